//go:build race

package systemtest

// raceDetector reports whether the tests run under the race detector,
// which makes CPU-heavy tests several times slower.
const raceDetector = true
