package scopes

import (
	"regexp"
	"slices"
	"strings"
)

// Access is what a scope lets an agent do with one column.
type Access int

const (
	// ColumnDenied is the zero Access, so that a forgotten lookup fails
	// closed: the column may not be referenced anywhere in a query.
	ColumnDenied Access = iota
	// ColumnAllowed columns may be used anywhere in a query.
	ColumnAllowed
	// ColumnMasked columns may only be selected as plain output columns,
	// and come back masked.
	ColumnMasked
)

// String returns "denied", "allowed" or "masked".
func (a Access) String() string {
	switch a {
	case ColumnAllowed:
		return "allowed"
	case ColumnMasked:
		return "masked"
	}
	return "denied"
}

// allTools lists every tool in the order EnabledTools reports them.
var allTools = []string{
	ToolQueryReadonly,
	ToolListTables,
	ToolDescribeTable,
	ToolMigrateDryRun,
	ToolApplyMigration,
	ToolChangeStatus,
}

// IsWriteTool reports whether the tool called name is one of the write
// tools, which need the scope's write role.
func IsWriteTool(name string) bool {
	return name == ToolMigrateDryRun || name == ToolApplyMigration || name == ToolChangeStatus
}

// ToolEnabled reports whether the tool called name is listed to the agent:
// it is one of the six tools, the scope does not disable it, and, for the
// write tools (migrate_dry_run, apply_migration_with_ticket,
// get_change_status), the scope has a write section.
func (s *Scope) ToolEnabled(name string) bool {
	if !slices.Contains(allTools, name) || slices.Contains(s.Tools.Disable, name) {
		return false
	}
	return s.Write != nil || !IsWriteTool(name)
}

// EnabledTools returns the names of the tools listed to the agent, always
// in the order query_readonly, list_tables, describe_table,
// migrate_dry_run, apply_migration_with_ticket, get_change_status.
func (s *Scope) EnabledTools() []string {
	var out []string
	for _, name := range allTools {
		if s.ToolEnabled(name) {
			out = append(out, name)
		}
	}
	return out
}

// URLEnv returns the name of the environment variable that holds the
// database URL, DefaultURLEnv when the scope names none.
func (s *Scope) URLEnv() string {
	if s.Database.URLEnv == "" {
		return DefaultURLEnv
	}
	return s.Database.URLEnv
}

// TableRule returns the read rule of the table named qualified, exactly as
// keyed in the scope: lower-case "schema.table", already resolved through
// the search path. The boolean is false when the table is not readable.
func (s *Scope) TableRule(qualified string) (TableRule, bool) {
	r, ok := s.Read.Tables[qualified]
	return r, ok
}

// ColumnAccess says how a query may use column col of the table. A masked
// column is ColumnMasked whether or not Columns lists it; otherwise a nil
// Columns allows every column, and a non-nil one only those it lists.
func (r TableRule) ColumnAccess(col string) Access {
	switch {
	case slices.Contains(r.Mask, col):
		return ColumnMasked
	case r.Columns == nil || slices.Contains(r.Columns, col):
		return ColumnAllowed
	}
	return ColumnDenied
}

// Restricted reports whether the rule limits or masks any column; an
// unrestricted table allows every column as it is.
func (r TableRule) Restricted() bool {
	return r.Columns != nil || len(r.Mask) > 0
}

// Allows reports whether statements of kind (one of WriteKinds) may be
// run. A nil Write allows nothing.
func (w *Write) Allows(kind string) bool {
	return w != nil && slices.Contains(w.Allow, kind)
}

// WritesTable reports whether writes may touch the table named qualified,
// as lower-case "schema.table". A nil Write writes nothing.
func (w *Write) WritesTable(qualified string) bool {
	return w != nil && slices.Contains(w.Tables, qualified)
}

// TicketOK reports whether ticket is non-empty and matches TicketPattern.
// A nil Write, an empty pattern or one that does not compile accepts no
// ticket.
func (w *Write) TicketOK(ticket string) bool {
	if w == nil || ticket == "" || w.TicketPattern == "" {
		return false
	}
	re, err := regexp.Compile(w.TicketPattern)
	return err == nil && re.MatchString(ticket)
}

// ReadRole returns the name of the database role the scope's reads run as:
// read.role, or airlock_<name>_read with every '-' of the scope name turned
// into '_' so that the name needs no quoting.
func (s *Scope) ReadRole() string {
	if s.Read.Role != "" {
		return s.Read.Role
	}
	return "airlock_" + strings.ReplaceAll(s.Name, "-", "_") + "_read"
}

// WriteRole returns the name of the database role the scope's writes run
// as: write.role, or airlock_<name>_write with every '-' of the scope name
// turned into '_'. It is defined whether or not the scope has a write
// section.
func (s *Scope) WriteRole() string {
	if s.Write != nil && s.Write.Role != "" {
		return s.Write.Role
	}
	return "airlock_" + strings.ReplaceAll(s.Name, "-", "_") + "_write"
}

// MaskRole returns the name of the role that owns the scope's masked views
// and alone may read the masked columns and the masking key:
// airlock_<name>_mask (docs/architecture.md, Masking).
func (s *Scope) MaskRole() string {
	return "airlock_" + strings.ReplaceAll(s.Name, "-", "_") + "_mask"
}

// MaskSchema returns the schema that holds the scope's masked views and
// masking key: airlock_<name>.
func (s *Scope) MaskSchema() string {
	return "airlock_" + strings.ReplaceAll(s.Name, "-", "_")
}

// DoRunnerFunction is the name of the function in a scope's schema that
// runs the scope's DO blocks: SECURITY DEFINER and owned by the write role,
// so that nothing in a block can leave that role (docs/architecture.md,
// DO blocks).
const DoRunnerFunction = "run_do"

// DoRunner returns the qualified, quoted name of scope name's DO runner.
func DoRunner(name string) string {
	return `"airlock_` + strings.ReplaceAll(name, "-", "_") + `".` + DoRunnerFunction
}
