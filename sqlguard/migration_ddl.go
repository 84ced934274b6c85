// Classifying DDL into kinds and targets: CREATE TABLE, ALTER TABLE and its
// subcommands, DROP, RENAME and COMMENT ON.

package sqlguard

import (
	"slices"
	"sort"
	"strings"

	"github.com/airlock-dev/airlock/scopes"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// migAlterRank orders ALTER TABLE subcommand kinds from the most to the
// least harmful (data loss, rewrite, full scan, catalog only); an ALTER
// TABLE with several subcommands reports the strongest as its Kind.
var migAlterRank = map[string]int{
	scopes.KindDropColumn: 0, scopes.KindDropConstraint: 1, scopes.KindAlterColumnType: 2,
	scopes.KindSetNotNull: 3, scopes.KindAddConstraint: 4, scopes.KindAddColumn: 5,
	scopes.KindValidateConstraint: 6, scopes.KindDropNotNull: 7, scopes.KindSetDefault: 8,
	scopes.KindDropDefault: 9,
}

func (c *migStmt) classifyCreateTable(s *pg.CreateStmt) *Refusal {
	switch s.Relation.Relpersistence {
	case "t":
		return c.refuse("temp_object", migHintTemp, "CREATE TEMPORARY TABLE creates a temporary object")
	case "u":
		return c.refuse("temp_object", migHintTemp, "CREATE UNLOGGED TABLE creates a table that is not crash-safe")
	}
	c.kinds = []string{scopes.KindCreateTable}
	c.newRel = s.Relation
	c.targets[s.Relation] = ""
	// INHERITS and PARTITION OF change the parent: it is a target too.
	for _, p := range s.InhRelations {
		c.targets[p.GetRangeVar()] = ""
	}
	for _, e := range s.TableElts {
		if cd := e.GetColumnDef(); cd != nil {
			c.allowDefaultNextval(cd)
		}
	}
	return nil
}

func (c *migStmt) classifyAlterTable(s *pg.AlterTableStmt) *Refusal {
	for _, n := range s.Cmds {
		if n.GetAlterTableCmd().GetSubtype() == pg.AlterTableType_AT_ChangeOwner {
			return c.refuse("privileges", migHintPrivileges, "ALTER ... OWNER TO changes ownership")
		}
	}
	if s.Objtype != pg.ObjectType_OBJECT_TABLE {
		return c.notAllowed("ALTER " + migObjectWord(s.Objtype))
	}
	c.targets[s.Relation] = ""
	for _, n := range s.Cmds {
		cmd := n.GetAlterTableCmd()
		kind, r := c.alterKind(cmd)
		if r != nil {
			return r
		}
		if cmd.Behavior == pg.DropBehavior_DROP_CASCADE {
			return c.refuse("cascade", migHintCascade, "ALTER TABLE ... CASCADE also drops the objects that depend on it")
		}
		if !slices.Contains(c.kinds, kind) {
			c.kinds = append(c.kinds, kind)
		}
	}
	sort.SliceStable(c.kinds, func(i, j int) bool { return migAlterRank[c.kinds[i]] < migAlterRank[c.kinds[j]] })
	return nil
}

func (c *migStmt) alterKind(cmd *pg.AlterTableCmd) (string, *Refusal) {
	switch cmd.Subtype {
	case pg.AlterTableType_AT_AddColumn:
		c.allowDefaultNextval(cmd.Def.GetColumnDef())
		return scopes.KindAddColumn, nil
	case pg.AlterTableType_AT_DropColumn:
		return scopes.KindDropColumn, nil
	case pg.AlterTableType_AT_AlterColumnType:
		return scopes.KindAlterColumnType, nil
	case pg.AlterTableType_AT_SetNotNull:
		return scopes.KindSetNotNull, nil
	case pg.AlterTableType_AT_DropNotNull:
		return scopes.KindDropNotNull, nil
	case pg.AlterTableType_AT_ColumnDefault:
		if cmd.Def == nil {
			return scopes.KindDropDefault, nil
		}
		c.allowNextval(cmd.Def)
		return scopes.KindSetDefault, nil
	case pg.AlterTableType_AT_AddConstraint:
		return scopes.KindAddConstraint, nil
	case pg.AlterTableType_AT_DropConstraint:
		return scopes.KindDropConstraint, nil
	case pg.AlterTableType_AT_ValidateConstraint:
		return scopes.KindValidateConstraint, nil
	case pg.AlterTableType_AT_DetachPartition:
		if cmd.Def.GetPartitionCmd().GetConcurrent() {
			return "", c.refuse("not_transactional", migHintConcurrently,
				"DETACH PARTITION CONCURRENTLY cannot run inside a transaction block")
		}
	}
	return "", c.notAllowed("ALTER TABLE ... " + strings.TrimPrefix(cmd.Subtype.String(), "AT_"))
}

func (c *migStmt) classifyDrop(s *pg.DropStmt) *Refusal {
	var kind string
	index := false
	switch s.RemoveType {
	case pg.ObjectType_OBJECT_TABLE:
		kind = scopes.KindDropTable
	case pg.ObjectType_OBJECT_VIEW:
		kind = scopes.KindDropView
	case pg.ObjectType_OBJECT_INDEX:
		if s.Concurrent {
			return c.refuse("not_transactional", migHintConcurrently,
				"DROP INDEX CONCURRENTLY cannot run inside a transaction block")
		}
		kind, index = scopes.KindDropIndex, true
	case pg.ObjectType_OBJECT_FUNCTION, pg.ObjectType_OBJECT_PROCEDURE, pg.ObjectType_OBJECT_ROUTINE,
		pg.ObjectType_OBJECT_TRIGGER, pg.ObjectType_OBJECT_RULE, pg.ObjectType_OBJECT_EVENT_TRIGGER,
		pg.ObjectType_OBJECT_POLICY, pg.ObjectType_OBJECT_AGGREGATE, pg.ObjectType_OBJECT_LANGUAGE,
		pg.ObjectType_OBJECT_CAST, pg.ObjectType_OBJECT_TRANSFORM:
		return c.refuse("code_object", migHintCodeObject, "DROP %s drops code that runs in the server", migObjectWord(s.RemoveType))
	case pg.ObjectType_OBJECT_EXTENSION:
		return c.refuse("extension", "extensions install code that runs in the server; ask an administrator",
			"DROP EXTENSION changes extensions")
	default:
		return c.notAllowed("DROP " + migObjectWord(s.RemoveType))
	}
	if s.Behavior == pg.DropBehavior_DROP_CASCADE {
		return c.refuse("cascade", migHintCascade, "DROP ... CASCADE also drops the objects that depend on it")
	}
	c.kinds = []string{kind}
	for _, o := range s.Objects {
		c.listTargets = append(c.listTargets, &migListTarget{list: o.GetList(), index: index})
	}
	return nil
}

func (c *migStmt) classifyRename(s *pg.RenameStmt) *Refusal {
	switch s.RenameType {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_COLUMN,
		pg.ObjectType_OBJECT_TABCONSTRAINT:
		c.targets[s.Relation] = ""
	case pg.ObjectType_OBJECT_INDEX:
		c.indexRels = append(c.indexRels, s.Relation)
		c.targets[s.Relation] = ""
	case pg.ObjectType_OBJECT_DATABASE:
		return c.refuse("database", "databases are managed by an administrator", "ALTER DATABASE ... RENAME changes databases")
	case pg.ObjectType_OBJECT_TABLESPACE:
		return c.refuse("tablespace", "tablespaces are managed by an administrator", "ALTER TABLESPACE ... RENAME changes tablespaces")
	case pg.ObjectType_OBJECT_ROLE:
		return c.refuse("privileges", migHintPrivileges, "ALTER ROLE ... RENAME changes roles")
	case pg.ObjectType_OBJECT_FUNCTION, pg.ObjectType_OBJECT_PROCEDURE, pg.ObjectType_OBJECT_ROUTINE,
		pg.ObjectType_OBJECT_TRIGGER, pg.ObjectType_OBJECT_RULE, pg.ObjectType_OBJECT_EVENT_TRIGGER,
		pg.ObjectType_OBJECT_POLICY, pg.ObjectType_OBJECT_AGGREGATE, pg.ObjectType_OBJECT_LANGUAGE:
		return c.refuse("code_object", migHintCodeObject, "ALTER %s ... RENAME changes code objects", migObjectWord(s.RenameType))
	default:
		return c.notAllowed("ALTER " + migObjectWord(s.RenameType) + " ... RENAME")
	}
	if s.Behavior == pg.DropBehavior_DROP_CASCADE {
		return c.refuse("cascade", migHintCascade, "RENAME ... CASCADE reaches dependent objects")
	}
	c.kinds = []string{scopes.KindRename}
	return nil
}

func (c *migStmt) classifyComment(s *pg.CommentStmt) *Refusal {
	target := &migListTarget{list: s.Object.GetList()}
	switch s.Objtype {
	case pg.ObjectType_OBJECT_TABLE, pg.ObjectType_OBJECT_VIEW:
	case pg.ObjectType_OBJECT_INDEX:
		target.index = true
	case pg.ObjectType_OBJECT_COLUMN, pg.ObjectType_OBJECT_TABCONSTRAINT:
		// The last name is the column or constraint; the rest is the table.
		target.trim = 1
	default:
		return c.notAllowed("COMMENT ON " + migObjectWord(s.Objtype))
	}
	if len(target.names()) == 0 {
		return c.notAllowed("COMMENT ON " + migObjectWord(s.Objtype))
	}
	c.listTargets = append(c.listTargets, target)
	c.kinds = []string{scopes.KindComment}
	return nil
}
