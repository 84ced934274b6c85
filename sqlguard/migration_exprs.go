// The read path's rules on calls and names, applied everywhere in a
// migration: function calls, types, operators, collations and operator
// classes.

package sqlguard

import (
	"fmt"
	"slices"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// checkFunctions sends every function call to the read policy's checker.
func (c *migStmt) checkFunctions() *Refusal {
	for _, f := range c.walk.funcs {
		if c.nextval[f] {
			continue
		}
		schema, name, ok := migFuncName(f)
		if !ok {
			return c.crossDatabase(strings.Join(migStrings(f.Funcname), "."))
		}
		if c.read.Functions == nil {
			return c.refuse("function_not_allowed", "this scope allows no function calls; use literal values",
				"function %s is not allowed", migQualify(schema, name))
		}
		if r := checkCallArgs(c.read.Functions, schema, name, f.Args); r != nil {
			out := *r
			if c.multi {
				out.Reason = fmt.Sprintf("statement %d: %s", c.index+1, out.Reason)
			}
			return &out
		}
	}
	return nil
}

// scopeSchemas are the schemas a type or operator class may be qualified
// with: pg_catalog, the search path and the schemas of the scope's tables.
func (c *migStmt) scopeSchemas() []string {
	set := map[string]bool{"pg_catalog": true}
	for _, s := range c.searchPath() {
		set[s] = true
	}
	for t := range c.w.Tables {
		set[strings.SplitN(t, ".", 2)[0]] = true
	}
	for _, t := range c.read.Tables {
		set[t.Schema] = true
	}
	return migSortedKeys(set)
}

// checkNames applies the read path's rules on types, operators and
// collations to every one the statement names, wherever it is: a cast in
// an UPDATE, a column type, a CHECK, an index expression, a view body.
// Object identifier types look up any name given as text (an existence
// oracle for objects outside the scope: 'public.secrets'::regclass), and as
// a column type turn every later insert of a literal into such a lookup;
// xml input runs the XML parser. docs/architecture.md, Write statements:
// the read rules everywhere.
func (c *migStmt) checkNames() *Refusal {
	if len(c.walk.xml) > 0 {
		return c.refuse("function_not_allowed", "use the json and jsonb functions instead",
			"XML expressions (%s) are not allowed: they run the XML parser", strings.ToUpper(c.walk.xml[0]))
	}
	schemas := c.scopeSchemas()
	for _, t := range c.walk.typeNames {
		if c.exempt[t] {
			continue
		}
		if r := c.checkType(t, schemas); r != nil {
			return r
		}
	}
	for _, e := range c.walk.aExprs {
		if r := readOperator(e.Name); r != nil {
			return c.wrap(r)
		}
	}
	for _, l := range c.walk.subLinks {
		if r := readOperator(l.OperName); r != nil {
			return c.wrap(r)
		}
	}
	for _, sb := range c.walk.sortBys {
		if r := readOperator(sb.UseOp); r != nil {
			return c.wrap(r)
		}
	}
	for _, con := range c.walk.constraints {
		for _, ops := range migExclusionOps(con) {
			if r := readOperator(ops.Items); r != nil {
				return c.wrap(r)
			}
		}
	}
	for _, cc := range c.walk.collates {
		if r := readCollation(cc.Collname); r != nil {
			return c.wrap(r)
		}
	}
	for _, ie := range c.walk.indexElems {
		if r := readCollation(ie.Collation); r != nil {
			return c.wrap(r)
		}
		// Operator classes resolve through the search path like types;
		// one in a schema outside the scope runs code outside it.
		names := migStrings(ie.Opclass)
		if len(names) != len(ie.Opclass) || len(names) > 2 || len(names) == 2 && !slices.Contains(schemas, names[0]) {
			return c.refuse("opclass_not_allowed", "use operator classes of pg_catalog or of the scope's schemas: "+joinNames(schemas),
				"operator class %s is not allowed", strings.Join(names, "."))
		}
	}
	return nil
}

// checkType is the read path's type rule (readRefusedTypes) with one
// difference: a type may be qualified with any of the scope's schemas, not
// only pg_catalog, since migrations create columns of the scope's own
// enums and domains. Unqualified types resolve with pg_catalog first.
func (c *migStmt) checkType(t *pg.TypeName, schemas []string) *Refusal {
	names := migStrings(t.Names)
	written := strings.Join(names, ".")
	hint := "use built-in types (unqualified or pg_catalog.) or types of the scope's schemas: " + joinNames(schemas)
	switch {
	case t.PctType:
		return c.refuse("type_not_allowed", hint, "%s%%TYPE is not allowed", written)
	case len(names) != len(t.Names) || len(names) == 0 || len(names) > 2:
		return c.refuse("type_not_allowed", hint, "type %s is not allowed", written)
	case len(names) == 2 && !slices.Contains(schemas, names[0]):
		return c.refuse("type_not_allowed", hint, "type %s is not allowed: %s is not one of the scope's schemas", written, names[0])
	}
	base := names[len(names)-1]
	if !readRefusedTypes[base] {
		return nil
	}
	why := "its input looks up objects by name"
	if base == "xml" || base == "_xml" {
		why = "its input runs the XML parser"
	}
	return c.refuse("type_not_allowed", "use built-in types other than xml and the object identifier types (regclass, regproc, ...)",
		"type %s is not allowed: %s", written, why)
}
