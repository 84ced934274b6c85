// The read guard's node allowlist (readFields): every parse-tree message
// and field it understands; and the names of node and statement kinds.

package sqlguard

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// readFields is the closed list of parse-tree messages the read guard
// understands, each with the fields it may carry. A message of another kind,
// or one with any other field set, is refused: every field listed here is
// walked (or deliberately ignored because it cannot hold a name or an
// expression) by the read guard's walk (read.go and read_*.go), so a field
// the guard does not look at can never carry a table, column or call past
// it.
var readFields = readFieldSets(map[protoreflect.Name]string{
	"RawStmt":          "stmt stmt_location stmt_len",
	"SelectStmt":       "distinct_clause target_list from_clause where_clause group_clause group_distinct having_clause window_clause values_lists sort_clause limit_offset limit_count limit_option with_clause op all larg rarg",
	"ExplainStmt":      "query options",
	"DefElem":          "defname arg defaction location arg_location",
	"WithClause":       "ctes recursive location",
	"CommonTableExpr":  "ctename aliascolnames ctematerialized ctequery location",
	"ResTarget":        "name val location",
	"ColumnRef":        "fields location",
	"A_Const":          "ival fval boolval sval bsval isnull location",
	"ParamRef":         "number location",
	"A_Expr":           "kind name lexpr rexpr location",
	"BoolExpr":         "boolop args location",
	"NullTest":         "arg nulltesttype argisrow location",
	"BooleanTest":      "arg booltesttype location",
	"FuncCall":         "funcname args agg_order agg_filter over agg_within_group agg_star agg_distinct func_variadic funcformat location",
	"NamedArgExpr":     "arg name argnumber location",
	"TypeCast":         "arg type_name location",
	"TypeName":         "names typmods typemod array_bounds location",
	"CollateClause":    "arg collname location",
	"CaseExpr":         "arg args defresult location",
	"CaseWhen":         "expr result location",
	"CoalesceExpr":     "args location",
	"MinMaxExpr":       "op args location",
	"SubLink":          "sub_link_type testexpr oper_name subselect location",
	"RowExpr":          "args row_format colnames location",
	"A_ArrayExpr":      "elements location",
	"A_Indirection":    "arg indirection",
	"A_Indices":        "is_slice lidx uidx",
	"SQLValueFunction": "op typmod location",
	"GroupingSet":      "kind content location",
	"GroupingFunc":     "args location",
	"SortBy":           "node sortby_dir sortby_nulls use_op location",
	"WindowDef":        "name refname partition_clause order_clause frame_options start_offset end_offset location",
	"RangeVar":         "schemaname relname inh relpersistence alias location",
	"Alias":            "aliasname colnames",
	"RangeSubselect":   "lateral subquery alias",
	"RangeFunction":    "lateral ordinality is_rowsfrom functions alias coldeflist",
	"ColumnDef":        "colname type_name is_local coll_clause location",
	"JoinExpr":         "jointype is_natural larg rarg using_clause quals alias",
	"List":             "items",
})

func readFieldSets(in map[protoreflect.Name]string) map[protoreflect.Name]map[protoreflect.Name]bool {
	out := make(map[protoreflect.Name]map[protoreflect.Name]bool, len(in))
	for msg, fields := range in {
		set := map[protoreflect.Name]bool{}
		for _, f := range strings.Fields(fields) {
			set[protoreflect.Name(f)] = true
		}
		out[msg] = set
	}
	return out
}

// readKnownFields refuses a message that is not on the readFields list or
// has a field set that is not listed for it.
func readKnownFields(m proto.Message) *Refusal {
	pr := m.ProtoReflect()
	name := pr.Descriptor().Name()
	allowed, ok := readFields[name]
	if !ok {
		return refuse("unsupported_syntax", readHintSyntax, "%s is not supported", name)
	}
	var bad protoreflect.Name
	pr.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !allowed[fd.Name()] {
			bad = fd.Name()
			return false
		}
		return true
	})
	if bad != "" {
		return refuse("unsupported_syntax", readHintSyntax, "%s with %s is not supported", name, bad)
	}
	return nil
}

// readNodeName is the parse-tree kind of n, such as "XmlExpr".
func readNodeName(n *pg_query.Node) string {
	if n == nil {
		return "nothing"
	}
	pr := n.ProtoReflect()
	fd := pr.WhichOneof(pr.Descriptor().Oneofs().ByName("node"))
	if fd == nil {
		return "an empty node"
	}
	return string(fd.Message().Name())
}

// readStatementKinds names the statements agents most often try, in SQL.
var readStatementKinds = map[string]string{
	"InsertStmt":         "INSERT",
	"UpdateStmt":         "UPDATE",
	"DeleteStmt":         "DELETE",
	"MergeStmt":          "MERGE",
	"TransactionStmt":    "transaction control (BEGIN, COMMIT, ROLLBACK, PREPARE TRANSACTION, ...)",
	"VariableSetStmt":    "SET / RESET",
	"VariableShowStmt":   "SHOW",
	"CopyStmt":           "COPY",
	"DoStmt":             "DO",
	"CallStmt":           "CALL",
	"CreateStmt":         "CREATE TABLE",
	"CreateTableAsStmt":  "CREATE TABLE AS",
	"ViewStmt":           "CREATE VIEW",
	"IndexStmt":          "CREATE INDEX",
	"CreateFunctionStmt": "CREATE FUNCTION",
	"DropStmt":           "DROP",
	"TruncateStmt":       "TRUNCATE",
	"AlterTableStmt":     "ALTER TABLE",
	"GrantStmt":          "GRANT / REVOKE",
	"GrantRoleStmt":      "GRANT / REVOKE role",
	"VacuumStmt":         "VACUUM / ANALYZE",
	"NotifyStmt":         "NOTIFY",
	"ListenStmt":         "LISTEN",
	"UnlistenStmt":       "UNLISTEN",
	"LockStmt":           "LOCK",
	"PrepareStmt":        "PREPARE",
	"ExecuteStmt":        "EXECUTE",
	"DeallocateStmt":     "DEALLOCATE",
	"DeclareCursorStmt":  "DECLARE CURSOR",
	"FetchStmt":          "FETCH",
	"CheckPointStmt":     "CHECKPOINT",
	"DiscardStmt":        "DISCARD",
	"LoadStmt":           "LOAD",
	"RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
	"AlterSystemStmt":    "ALTER SYSTEM",
	"ExplainStmt":        "EXPLAIN",
}

func readStatementName(n *pg_query.Node) string {
	kind := readNodeName(n)
	if sql, ok := readStatementKinds[kind]; ok {
		return sql + " (" + kind + ")"
	}
	return kind
}
