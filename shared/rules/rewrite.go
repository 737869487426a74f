package rules

import (
	"fmt"
	"regexp/syntax"
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// rewrite is the expr-lang patch that makes a script pay for what it does.
// It runs once per compile on the parsed script (children before parents)
// and:
//
//   - refuses names starting with "__" (the meter's own), $env, method
//     calls, builtins that are not available, trim with a cutset, and
//     matches with a pattern that is not a literal;
//   - puts __tick(__meter) before every binary operator, builtin call and
//     predicate body (so before every loop iteration);
//   - turns a + b into let x = a; let y = b; __concat(__meter, x, y); x + y,
//     which charges a string before it is built;
//   - charges text matching a literal pattern by the pattern's size;
//   - charges the arguments of builtins that copy them (charged), and
//     makes sum add numbers only.
type rewrite struct {
	err  error // the first reason to refuse the script
	vars int   // fresh variable names handed out
}

// unavailableBuiltins are the builtins switched off: their output can be
// much larger than their input (repeat, join, replace, string, toJSON,
// flatten), or is a decoding guards do not need, or their time is
// quadratic (uniq).
func unavailableBuiltins() []string {
	return []string{"repeat", "join", "replace", "string", "toJSON", "fromJSON",
		"toBase64", "fromBase64", "uniq", "flatten"}
}

// charged reports whether the builtin name copies its arguments, so that
// each is charged by its length before the call.
func charged(name string) bool {
	switch name {
	case "upper", "lower", "split", "splitAfter", "keys", "values", "toPairs", "fromPairs", "concat":
		return true
	}
	return false
}

// Visit implements ast.Visitor.
func (w *rewrite) Visit(node *ast.Node) {
	if w.err != nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		w.checkName(n.Value)
	case *ast.VariableDeclaratorNode:
		w.checkName(n.Name)
	case *ast.CallNode:
		if _, ok := n.Callee.(*ast.MemberNode); ok {
			w.refuse("method calls are not available")
		}
	case *ast.PredicateNode:
		n.Node = w.tick(n.Node)
	case *ast.BuiltinNode:
		w.builtin(n)
		ast.Patch(node, w.tick(n))
	case *ast.BinaryNode:
		ast.Patch(node, w.binary(n))
	}
}

// refuse records why the script is refused, unless a reason is known.
func (w *rewrite) refuse(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, args...)
	}
}

// checkName refuses reserved and unavailable names.
func (w *rewrite) checkName(name string) {
	switch {
	case strings.HasPrefix(name, "__") || name == "$env":
		w.refuse("the name %s is reserved", name)
	case slices.Contains(unavailableBuiltins(), name):
		w.refuse("%s is not available in rules", name)
	}
}

// builtin charges the arguments of a builtin that copies them and makes
// sum add numbers only.
func (w *rewrite) builtin(n *ast.BuiltinNode) {
	switch {
	case charged(n.Name):
		for i, arg := range n.Arguments {
			n.Arguments[i] = call(fnCharge, meterVar(), arg)
		}
	case n.Name == "trim" && len(n.Arguments) > 1:
		w.refuse("trim takes no cutset here (its time grows with the cutset); use trimPrefix or trimSuffix")
	case n.Name == "sum":
		if len(n.Arguments) == 1 {
			n.Arguments = append(n.Arguments, &ast.PredicateNode{Node: w.tick(&ast.PointerNode{})})
		}
		if p, ok := n.Arguments[1].(*ast.PredicateNode); ok {
			p.Node = call(fnNumber, p.Node)
		}
	}
}

// binary returns n with its cost charged before it runs.
func (w *rewrite) binary(n *ast.BinaryNode) ast.Node {
	switch n.Operator {
	case "+":
		x, y := w.fresh(), w.fresh()
		left, right := n.Left, n.Right
		n.Left, n.Right = ident(x), ident(y)
		check := call(fnConcat, meterVar(), ident(x), ident(y))
		return let(x, left, let(y, right, seq(check, n)))
	case "matches":
		return w.matches(n)
	}
	return w.tick(n)
}

// matches charges n's text by the size of its pattern, which must be a literal.
func (w *rewrite) matches(n *ast.BinaryNode) ast.Node {
	pattern, ok := n.Right.(*ast.StringNode)
	if !ok {
		w.refuse("matches needs a literal pattern")
		return n
	}
	insts, err := regexpSize(pattern.Value)
	if err != nil {
		w.refuse("invalid pattern %q: %v", clip(pattern.Value), err)
		return n
	}
	x, left := w.fresh(), n.Left
	n.Left = ident(x)
	check := call(fnRegexp, meterVar(), ident(x), &ast.IntegerNode{Value: insts})
	return let(x, left, seq(check, n))
}

// regexpSize returns the number of instructions of pattern's program, as
// Go's regexp compiles it.
func regexpSize(pattern string) (int, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, err
	}
	return len(prog.Inst), nil
}

// tick returns n preceded by a step: (__tick(__meter); n).
func (w *rewrite) tick(n ast.Node) ast.Node {
	return seq(call(fnTick, meterVar()), n)
}

// fresh returns a variable name no script can use.
func (w *rewrite) fresh() string {
	w.vars++
	return fmt.Sprintf("__v%d", w.vars)
}

func meterVar() ast.Node         { return ident(varMeter) }
func ident(name string) ast.Node { return &ast.IdentifierNode{Value: name} }

func call(name string, args ...ast.Node) ast.Node {
	return &ast.CallNode{Callee: ident(name), Arguments: args}
}

func seq(nodes ...ast.Node) ast.Node { return &ast.SequenceNode{Nodes: nodes} }

func let(name string, value, body ast.Node) ast.Node {
	return &ast.VariableDeclaratorNode{Name: name, Value: value, Expr: body}
}
