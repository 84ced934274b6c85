// Package codes is the registry of every code airlock answers with. Its
// one job: each code is registered once, with where it arises and what it
// means, and every page documenting codes is generated from here.
//
//   - Refusal and failure codes (codes.go): the code an agent reads in
//     _meta["airlock/error"].code (and in "Refused (CODE): ..." / "Failed
//     (CODE): ..."), and the code of the review API's JSON errors.
//     docs/refusals.md is generated from Registry.
//   - Finding codes (findings.go): the warnings of a dry-run report, each
//     with its level, title and fix, as the parse tree (sqlguard) or the
//     dry run (migrate) reports it. docs/findings.md is generated from
//     Findings.
//
// Each code is stable. The package's tests parse the repository's source
// and fail on a code the registry lacks or an entry no longer used, and on
// a generated page out of date (go test ./codes -update rewrites both).
//
// The package imports nothing but the standard library, so that sqlguard
// and every other package may import it.
package codes
