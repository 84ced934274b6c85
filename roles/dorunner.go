package roles

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/airlock-dev/airlock/scopes"
)

// A scope that allows DO blocks gets a runner for them
// (docs/architecture.md, DO blocks): a SECURITY DEFINER function in the
// scope's schema, owned by the write role and executable by it alone, that
// runs a block's body. Inside a SECURITY DEFINER function PostgreSQL
// refuses SET ROLE, RESET ROLE and SET SESSION AUTHORIZATION (also through
// set_config), so a block cannot leave the write role for the login that
// runs the migration: the service's, or a reviewer's at commit.

// doRunnerWanted reports whether scope's DO blocks need a runner.
func doRunnerWanted(scope *scopes.Scope) bool {
	return scope.Write != nil && scope.Write.Allows("do")
}

// doRunnerSignature is the runner as DROP and ALTER name it.
func doRunnerSignature(scope *scopes.Scope) string {
	return qualified(scope.MaskSchema(), scopes.DoRunnerFunction) + "(text)"
}

// doRunnerDefinition is the CREATE OR REPLACE of the runner. Its
// search_path is the one migrations run with: pg_catalog first.
func doRunnerDefinition(scope *scopes.Scope) string {
	path := []string{"pg_catalog"}
	for _, s := range scope.Read.SearchPath {
		if s != "pg_catalog" && s != "pg_temp" {
			path = append(path, ident(s))
		}
	}
	path = append(path, "pg_temp")
	return "CREATE OR REPLACE FUNCTION " + qualified(scope.MaskSchema(), scopes.DoRunnerFunction) +
		"(body text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = " + strings.Join(path, ", ") +
		" AS $airlock$\nBEGIN\n\tEXECUTE 'DO ' || pg_catalog.quote_literal(body);\nEND\n$airlock$"
}

// doRunnerStamp identifies a runner's definition and owner; the plan keeps
// it as the function's comment and makes the runner again when it differs.
func doRunnerStamp(scope *scopes.Scope) string {
	sum := sha256.Sum256([]byte(doRunnerDefinition(scope) + "\nowner " + scope.WriteRole()))
	return "airlock DO runner " + hex.EncodeToString(sum[:8])
}

const doRunnerStateSQL = `
SELECT coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1 AND p.proname = '` + scopes.DoRunnerFunction + `'`

// planDoRunner returns what makes the runner exist exactly when the scope
// allows DO, as it should be. It runs after the write role's plan, so the
// role exists; the schema is made with the mask schema.
func planDoRunner(ctx context.Context, q querier, scope *scopes.Scope) ([]string, error) {
	stamps, err := queryStrings(ctx, q, doRunnerStateSQL, scope.MaskSchema())
	if err != nil {
		return nil, err
	}
	exists := len(stamps) > 0
	if !doRunnerWanted(scope) {
		if exists {
			return []string{"DROP FUNCTION " + doRunnerSignature(scope)}, nil
		}
		return nil, nil
	}
	if exists && stamps[0] == doRunnerStamp(scope) {
		return nil, nil
	}
	sig, ms, write := doRunnerSignature(scope), ident(scope.MaskSchema()), ident(scope.WriteRole())
	return []string{
		doRunnerDefinition(scope),
		// A role may own a function only in a schema where it may create:
		// granted for the change of owner only.
		"GRANT CREATE ON SCHEMA " + ms + " TO " + write,
		"ALTER FUNCTION " + sig + " OWNER TO " + write,
		"REVOKE CREATE ON SCHEMA " + ms + " FROM " + write,
		"REVOKE ALL ON FUNCTION " + sig + " FROM PUBLIC",
		"GRANT EXECUTE ON FUNCTION " + sig + " TO " + write,
		"COMMENT ON FUNCTION " + sig + " IS " + literal(doRunnerStamp(scope)),
	}, nil
}
