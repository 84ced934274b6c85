package pgtest

import "google.golang.org/protobuf/reflect/protoreflect"

// Walk calls visit on m and then on every message below it, depth first:
// each node of a pg_query parse tree, whatever its kind. Tests use it as an
// oracle that knows nothing of the guard's own walks.
func Walk(m protoreflect.Message, visit func(protoreflect.Message)) {
	visit(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				Walk(v.List().Get(i).Message(), visit)
			}
		case fd.Message() != nil && !fd.IsMap():
			Walk(v.Message(), visit)
		}
		return true
	})
}
