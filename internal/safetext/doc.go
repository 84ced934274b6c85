// Package safetext renders text an agent wrote for the human who reviews
// it. The agent is the adversary (docs/architecture.md, Threat model) and
// the human commit is a layer of defense of its own (docs/architecture.md,
// Layers of defense), so the reviewer's screen must show exactly what the
// agent sent: nothing invisible, nothing that reorders a line, moves the
// cursor, starts a new line or draws over another.
//
// # Notation
//
// Whatever would not be seen as itself is shown as an escape:
//
//	\u{200B}   a code point (hex, upper case, at least four digits) that
//	           is invisible, reorders text, breaks lines or is otherwise not
//	           what it looks like; see Hidden for the list
//	\x{FF}     a byte that is not part of valid UTF-8
//	\n \r \t   in Line only: a newline, carriage return or tab, so that a
//	           one-line field stays one line
//
// Every escape starts with a backslash, so a backslash the agent typed is
// itself shown as \u{005C} whenever what follows it would otherwise read
// as an escape: "u{", "x{" or an escape, and in Line also one of the
// letters of familiar escapes, "n", "r", "t", "u", "U" or "x". A run of
// backslashes is shown so as a whole. On screen, \u{200B} is therefore
// always a real U+200B, and the eight characters "\u{200B}" typed by the
// agent appear as \u{005C}u{200B}. Any other backslash (a regular
// expression's \d, SQL's E'\n' in Block) is shown as it is, so SQL stays
// readable.
//
// Block, for multi-line text like SQL, breaks lines at "\n" only and keeps
// tabs as they are (a tab only moves the cursor forward, to the right of
// the caller's line prefix); carriage returns and every other line or page
// separator (U+000B, U+000C, U+0085, U+2028, U+2029) are escapes.
//
// JSON encodes values as encoding/json does, then escapes every Hidden rune
// inside strings (and combining marks past the fourth in a row) as \uXXXX,
// a surrogate pair beyond U+FFFF: the output is valid JSON and decodes to
// the same strings. Invalid UTF-8 cannot travel in JSON; encoding/json has
// already replaced each bad byte with U+FFFD.
//
// It is an internal helper: it imports no airlock package outside internal/,
// so any layer may use it (docs/architecture.md, Packages and layers).
package safetext
