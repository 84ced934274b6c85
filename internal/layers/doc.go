// Package layers holds the test that keeps airlock's import graph in the
// order docs/architecture.md (Packages and layers) describes: no package
// imports one in a layer above its own, and internal/* helpers import
// nothing outside internal/. It has no code of its own.
package layers
