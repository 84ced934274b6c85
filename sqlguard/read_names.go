// Names outside the scope's tables: the rules on types, operators,
// collations and aliases, which the migration guard applies too.

package sqlguard

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// readRefusedTypes are pg_catalog types refused in casts and column
// definitions: xml input runs the XML parser on agent text, the object
// identifier types look up any object by name, so a cast such as
// 'public.secrets'::regclass tells whether a table outside the scope
// exists, and aclitem's input looks up the roles it names. oid itself
// stays: it is a number, and everything that maps an oid to an object is
// refused with the catalog lookup class (docs/architecture.md, Catalog
// lookups).
var readRefusedTypes = map[string]bool{"xml": true, "_xml": true, "aclitem": true, "_aclitem": true,
	"regclass": true, "regproc": true, "regprocedure": true, "regoper": true, "regoperator": true,
	"regtype": true, "regnamespace": true, "regrole": true, "regcollation": true, "regconfig": true,
	"regdictionary": true, "_regclass": true, "_regproc": true, "_regprocedure": true, "_regoper": true,
	"_regoperator": true, "_regtype": true, "_regnamespace": true, "_regrole": true, "_regcollation": true,
	"_regconfig": true, "_regdictionary": true}

func (c *readChecker) typeName(t *pg_query.TypeName, lv *readLevel) *Refusal {
	const hint = "use built-in types (unqualified or pg_catalog.)"
	if t == nil {
		return refuse("unsupported_syntax", readHintSyntax, "missing type name")
	}
	if r := readKnownFields(t); r != nil {
		return r
	}
	if r := readStrings(t.Names, "type name"); r != nil {
		return r
	}
	var name string
	switch len(t.Names) {
	case 1:
		name = t.Names[0].GetString_().GetSval()
	case 2:
		if s := t.Names[0].GetString_().GetSval(); s != "pg_catalog" {
			return refuse("type_not_allowed", hint, "type %s is not allowed", readJoinStrings(t.Names))
		}
		name = t.Names[1].GetString_().GetSval()
	default:
		return refuse("type_not_allowed", hint, "type %s is not allowed", readJoinStrings(t.Names))
	}
	if readRefusedTypes[name] {
		return refuse("type_not_allowed", hint, "type %s is not allowed", name)
	}
	for _, b := range t.ArrayBounds {
		if b.GetInteger() == nil {
			return refuse("unsupported_syntax", readHintSyntax, "malformed array bounds")
		}
	}
	return c.exprs(lv, t.Typmods...)
}

func readOperator(name []*pg_query.Node) *Refusal {
	if r := readStrings(name, "operator name"); r != nil {
		return r
	}
	if len(name) <= 1 {
		return nil
	}
	if len(name) == 2 && name[0].GetString_().GetSval() == "pg_catalog" {
		return nil
	}
	return refuse("operator_not_allowed", "use built-in operators (unqualified or OPERATOR(pg_catalog.op))",
		"operator %s is not allowed", readJoinStrings(name))
}

func readCollation(name []*pg_query.Node) *Refusal {
	if r := readStrings(name, "collation name"); r != nil {
		return r
	}
	if len(name) <= 1 || (len(name) == 2 && name[0].GetString_().GetSval() == "pg_catalog") {
		return nil
	}
	return refuse("collation_not_allowed", "use built-in collations (unqualified or pg_catalog.)", "collation %s is not allowed", readJoinStrings(name))
}

func readAlias(a *pg_query.Alias) *Refusal {
	if r := readKnownFields(a); r != nil {
		return r
	}
	return readStrings(a.Colnames, "column alias")
}

// readStrings refuses a name list holding anything but String nodes.
func readStrings(ns []*pg_query.Node, what string) *Refusal {
	for _, n := range ns {
		if n.GetString_() == nil {
			return refuse("unsupported_syntax", readHintSyntax, "%s of kind %s is not supported", what, readNodeName(n))
		}
	}
	return nil
}

func readJoinStrings(ns []*pg_query.Node) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.GetString_().GetSval()
	}
	return strings.Join(parts, ".")
}
