package scopes

// WriteKinds is the closed list of statement kinds a scope's write.allow may
// name. The SQL guard classifies every write statement into exactly one of
// them (or refuses it), so a kind missing here can never be allowed. The
// embedded schema's enum must list the same kinds; a test keeps them equal.
var WriteKinds = []string{
	"create_table",
	"drop_table",
	"add_column",
	"drop_column",
	"alter_column_type",
	"set_not_null",
	"drop_not_null",
	"set_default",
	"drop_default",
	"add_constraint",
	"drop_constraint",
	"validate_constraint",
	"create_index",
	"drop_index",
	"rename",
	"insert",
	"update",
	"delete",
	"truncate",
	"create_view",
	"drop_view",
	"comment",
	"do",
	"call",
}
