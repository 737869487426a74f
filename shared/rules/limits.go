package rules

import "time"

// The default Limits, chosen for a public deployment: a guard script of a
// few lines over a token of up to 1 MiB runs in microseconds and stays far
// inside them, while one evaluation of a hostile script allocates at most
// 1 MiB of strings and 1 Mi elements and takes at most about 100 ms of one
// core (measured: at most ~50 ms more for the one operation running when
// the time is up, e.g. max over a million elements).
const (
	DefaultMaxNodes     = 1000
	DefaultMemoryBudget = 1 << 20
	DefaultMaxSteps     = 1_000_000
	DefaultTimeout      = 100 * time.Millisecond
)

// Limits bounds what an Expression rule may cost. A field left zero (or
// negative) takes its default, so Limits{} is ready to use and means
// DefaultLimits(); no field can switch a bound off.
type Limits struct {
	// MaxScriptBytes is the longest script Compile accepts (default MaxScriptLen).
	MaxScriptBytes int
	// MaxNodes is the most syntax-tree nodes a script may parse into, which
	// bounds the size of its program (default DefaultMaxNodes).
	MaxNodes int
	// MemoryBudget bounds, per evaluation and counted as allocated (not as
	// held), both the bytes of strings plus the elements of lists and maps
	// that the script's operators and builtins copy, and, as expr-lang
	// counts it, the elements of the arrays, maps and ranges the VM itself
	// builds (default DefaultMemoryBudget). An element takes 8 to 32 bytes,
	// so with the default one evaluation allocates some tens of MiB at most.
	MemoryBudget int
	// MaxSteps bounds the work of one evaluation: a step (about 100 ns)
	// per binary operator, builtin call and loop iteration, and matching a
	// text against a regexp charged as text bytes × program instructions / 8
	// (default DefaultMaxSteps).
	MaxSteps int
	// Timeout bounds the time of one evaluation, which stops at the earlier
	// of the caller's deadline and Timeout (default DefaultTimeout).
	Timeout time.Duration

	stored bool // see Stored
}

// Stored returns l for compiling rules already stored: only the limits of
// an evaluation apply (memory, steps, time), not those of admission
// (script size, node count, the trial run), so that lowering an admission
// limit, or running services with different ones, never makes a stored
// workflow unloadable.
func (l Limits) Stored() Limits {
	l.stored = true
	return l
}

// DefaultLimits returns the limits Compile uses.
func DefaultLimits() Limits {
	return Limits{}.withDefaults()
}

// withDefaults returns l with every unset field at its default.
func (l Limits) withDefaults() Limits {
	l.MaxScriptBytes = orDefault(l.MaxScriptBytes, MaxScriptLen)
	l.MaxNodes = orDefault(l.MaxNodes, DefaultMaxNodes)
	l.MemoryBudget = orDefault(l.MemoryBudget, DefaultMemoryBudget)
	l.MaxSteps = orDefault(l.MaxSteps, DefaultMaxSteps)
	l.Timeout = orDefault(l.Timeout, DefaultTimeout)
	return l
}

// orDefault returns v when it is positive, def otherwise.
func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Compile validates r and prepares it for evaluation within l. Errors are
// fail.BadInput and name the offending rule, e.g. "rule 'r1': unknown
// condition type 'Foo'".
func (l Limits) Compile(r Rule) (*Compiled, error) {
	return compile(r, 1, "", l.withDefaults())
}
