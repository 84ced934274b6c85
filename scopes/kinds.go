package scopes

// The write kinds: every statement the SQL guard accepts is classified as
// exactly one of them (an ALTER TABLE as one per subcommand), and a
// scope's write.allow names the ones it allows. These constants are the
// one source of the kind names: sqlguard classifies into them, migrate
// rates and reverts by them, and the embedded schema's write.allow enum
// is generated from WriteKinds (go test ./scopes -run
// TestSchemaEnumsMatchGo -update).
const (
	KindCreateTable        = "create_table"
	KindDropTable          = "drop_table"
	KindAddColumn          = "add_column"
	KindDropColumn         = "drop_column"
	KindAlterColumnType    = "alter_column_type"
	KindSetNotNull         = "set_not_null"
	KindDropNotNull        = "drop_not_null"
	KindSetDefault         = "set_default"
	KindDropDefault        = "drop_default"
	KindAddConstraint      = "add_constraint"
	KindDropConstraint     = "drop_constraint"
	KindValidateConstraint = "validate_constraint"
	KindCreateIndex        = "create_index"
	KindDropIndex          = "drop_index"
	KindRename             = "rename"
	KindInsert             = "insert"
	KindUpdate             = "update"
	KindDelete             = "delete"
	KindTruncate           = "truncate"
	KindCreateView         = "create_view"
	KindDropView           = "drop_view"
	KindComment            = "comment"
	KindDo                 = "do"
	KindCall               = "call"
)

// WriteKinds is the closed list of statement kinds a scope's write.allow may
// name, in the order the schema documents them. The SQL guard classifies
// every write statement into exactly one of them (or refuses it), so a
// kind missing here can never be allowed.
var WriteKinds = []string{
	KindCreateTable,
	KindDropTable,
	KindAddColumn,
	KindDropColumn,
	KindAlterColumnType,
	KindSetNotNull,
	KindDropNotNull,
	KindSetDefault,
	KindDropDefault,
	KindAddConstraint,
	KindDropConstraint,
	KindValidateConstraint,
	KindCreateIndex,
	KindDropIndex,
	KindRename,
	KindInsert,
	KindUpdate,
	KindDelete,
	KindTruncate,
	KindCreateView,
	KindDropView,
	KindComment,
	KindDo,
	KindCall,
}
