// Names in migrations: reading them from parse-tree nodes, and the words
// refusals use for statement types, objects and kinds.

package sqlguard

import (
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/scopes"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// migFuncName splits a function name; ok is false when it names a
// database.
func migFuncName(f *pg.FuncCall) (schema, name string, ok bool) {
	parts := migStrings(f.Funcname)
	switch len(parts) {
	case 1:
		return "", parts[0], true
	case 2:
		return parts[0], parts[1], true
	}
	return "", strings.Join(parts, "."), false
}

func migQualify(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

func migStrings(nodes []*pg.Node) []string {
	var out []string
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

func migSortedKeys(m map[string]bool) []string {
	var out []string
	for k, ok := range m {
		if ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func migKindVerb(kind string) string {
	switch kind {
	case scopes.KindCreateTable, scopes.KindCreateView:
		return "the statement creates"
	case scopes.KindCreateIndex:
		return "the statement indexes"
	case scopes.KindInsert, scopes.KindUpdate, scopes.KindDelete, scopes.KindTruncate:
		return "the statement writes to"
	case scopes.KindDropTable, scopes.KindDropView, scopes.KindDropIndex:
		return "the statement drops"
	case scopes.KindComment:
		return "the statement comments on"
	}
	return "the statement alters"
}

func migObjectWord(t pg.ObjectType) string {
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " ")
}

func migTransactionWord(k pg.TransactionStmtKind) string {
	switch k {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN"
	case pg.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION"
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return "ROLLBACK"
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK TO SAVEPOINT"
	case pg.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION"
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED"
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED"
	}
	return "a transaction statement"
}

// migStmtName names a statement type for a refusal: the parse node's name
// in words ("CreateSchemaStmt" becomes "CREATE SCHEMA").
func migStmtName(n *pg.Node) string {
	fd := n.ProtoReflect().WhichOneof(n.ProtoReflect().Descriptor().Oneofs().ByName("node"))
	if fd == nil {
		return "an empty statement"
	}
	if name, ok := migStmtNames[string(fd.Message().Name())]; ok {
		return name
	}
	name := strings.TrimSuffix(string(fd.Message().Name()), "Stmt")
	var words []string
	start := 0
	for i := 1; i <= len(name); i++ {
		if i == len(name) || (name[i] >= 'A' && name[i] <= 'Z' && name[i-1] >= 'a' && name[i-1] <= 'z') {
			words = append(words, strings.ToUpper(name[start:i]))
			start = i
		}
	}
	return strings.Join(words, " ")
}

// migStmtNames are the statement names migStmtName cannot derive.
var migStmtNames = map[string]string{
	"CreatedbStmt":                 "CREATE DATABASE",
	"DropdbStmt":                   "DROP DATABASE",
	"AlterDatabaseStmt":            "ALTER DATABASE",
	"AlterDatabaseSetStmt":         "ALTER DATABASE SET",
	"AlterDatabaseRefreshCollStmt": "ALTER DATABASE REFRESH COLLATION VERSION",
	"CreateTableSpaceStmt":         "CREATE TABLESPACE",
	"DropTableSpaceStmt":           "DROP TABLESPACE",
	"AlterTableSpaceOptionsStmt":   "ALTER TABLESPACE",
	"AlterTableMoveAllStmt":        "ALTER TABLE ALL IN TABLESPACE",
	"CreateRoleStmt":               "CREATE ROLE",
	"AlterRoleStmt":                "ALTER ROLE",
	"AlterRoleSetStmt":             "ALTER ROLE SET",
	"DropRoleStmt":                 "DROP ROLE",
	"GrantStmt":                    "GRANT/REVOKE",
	"GrantRoleStmt":                "GRANT/REVOKE role",
	"AlterDefaultPrivilegesStmt":   "ALTER DEFAULT PRIVILEGES",
	"AlterOwnerStmt":               "ALTER ... OWNER TO",
	"ReassignOwnedStmt":            "REASSIGN OWNED",
	"DropOwnedStmt":                "DROP OWNED",
	"CreateTrigStmt":               "CREATE TRIGGER",
	"CreateEventTrigStmt":          "CREATE EVENT TRIGGER",
	"AlterEventTrigStmt":           "ALTER EVENT TRIGGER",
	"RuleStmt":                     "CREATE RULE",
	"CreatePlangStmt":              "CREATE LANGUAGE",
	"CreateFunctionStmt":           "CREATE FUNCTION/PROCEDURE",
	"AlterFunctionStmt":            "ALTER FUNCTION/PROCEDURE",
	"CreateSeqStmt":                "CREATE SEQUENCE",
	"AlterSeqStmt":                 "ALTER SEQUENCE",
	"CheckPointStmt":               "CHECKPOINT",
	"ClusterStmt":                  "CLUSTER",
	"ReindexStmt":                  "REINDEX",
	"DiscardStmt":                  "DISCARD",
	"ListenStmt":                   "LISTEN",
	"NotifyStmt":                   "NOTIFY",
	"UnlistenStmt":                 "UNLISTEN",
	"PrepareStmt":                  "PREPARE",
	"ExecuteStmt":                  "EXECUTE",
	"DeallocateStmt":               "DEALLOCATE",
	"DeclareCursorStmt":            "DECLARE CURSOR",
	"FetchStmt":                    "FETCH/MOVE",
	"ClosePortalStmt":              "CLOSE",
	"VariableShowStmt":             "SHOW",
	"RefreshMatViewStmt":           "REFRESH MATERIALIZED VIEW",
	"AlterObjectSchemaStmt":        "ALTER ... SET SCHEMA",
	"AlterObjectDependsStmt":       "ALTER ... DEPENDS ON EXTENSION",
	"CreateForeignTableStmt":       "CREATE FOREIGN TABLE",
	"ImportForeignSchemaStmt":      "IMPORT FOREIGN SCHEMA",
	"CreateStatsStmt":              "CREATE STATISTICS",
	"CompositeTypeStmt":            "CREATE TYPE",
	"CreateEnumStmt":               "CREATE TYPE ... AS ENUM",
	"CreateRangeStmt":              "CREATE TYPE ... AS RANGE",
	"DefineStmt":                   "CREATE (aggregate, operator, type, collation or text search object)",
	"CreateSchemaStmt":             "CREATE SCHEMA",
	"CreateExtensionStmt":          "CREATE EXTENSION",
	"AlterExtensionStmt":           "ALTER EXTENSION",
	"AlterExtensionContentsStmt":   "ALTER EXTENSION ADD/DROP",
	"CreatePolicyStmt":             "CREATE POLICY",
	"AlterPolicyStmt":              "ALTER POLICY",
	"CreateCastStmt":               "CREATE CAST",
	"CreateTransformStmt":          "CREATE TRANSFORM",
	"CreatePublicationStmt":        "CREATE PUBLICATION",
	"CreateSubscriptionStmt":       "CREATE SUBSCRIPTION",
	"CreateUserMappingStmt":        "CREATE USER MAPPING",
	"CreateForeignServerStmt":      "CREATE SERVER",
	"CreateFdwStmt":                "CREATE FOREIGN DATA WRAPPER",
	"AlterTsconfigurationStmt":     "ALTER TEXT SEARCH CONFIGURATION",
	"AlterTsdictionaryStmt":        "ALTER TEXT SEARCH DICTIONARY",
	"AlterEnumStmt":                "ALTER TYPE",
	"AlterTypeStmt":                "ALTER TYPE",
	"ReturnStmt":                   "RETURN",
	"PlassignStmt":                 "a PL/pgSQL assignment",
}
