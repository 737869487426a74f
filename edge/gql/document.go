package gql

import (
	"container/list"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// document is a parsed and validated query document, or the request errors
// that parsing or validation produced. Validated documents are shared
// between requests and must be treated as read-only.
type document struct {
	doc     *ast.QueryDocument
	errs    []*Error
	refused string // the limit that refused the document: tokens, depth, fields or aliases
}

// docKey identifies a cached document: the query text's hash plus the
// limits that took part in validating it.
type docKey struct {
	sum             [32]byte
	tokens          int
	limits          docLimits
	noIntrospection bool
}

// loadDocument parses and validates query, using the cache.
func (s *Schema) loadDocument(query string, l Limits) *document {
	key := docKey{sha256.Sum256([]byte(query)), l.MaxTokens, docLimitsOf(l), l.DisableIntrospection}
	if d, ok := s.docs.get(key); ok {
		return d
	}
	d := s.parseAndValidate(query, l)
	s.docs.put(key, d)
	return d
}

// parseAndValidate runs the parser with a token limit, then the depth,
// field and alias limits, then the validation rules. The limits are linear
// in the document and come first, so a document too big to run is refused
// before the rules spend time on it: OverlappingFieldsCanBeMerged is
// quadratic in same-named fields (about 250 ms for the worst 2,000-token
// documents we found; 1 ms for issue 12's 28-level fragment chain).
func (s *Schema) parseAndValidate(query string, l Limits) *document {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, l.MaxTokens)
	if err != nil {
		d := &document{errs: convertGQLErrors(CodeParseFailed, err)}
		if strings.HasPrefix(err.Error(), "exceeded token limit") {
			d.refused = "tokens"
		}
		return d
	}
	if errs, limit := checkLimits(doc, docLimitsOf(l)); len(errs) > 0 {
		return &document{errs: convertGQLErrors(CodeValidationFailed, errs), refused: limit}
	}
	errs := validator.ValidateWithRules(s.schema, doc, s.rules(l))
	if len(errs) > 0 {
		return &document{errs: convertGQLErrors(CodeValidationFailed, errs)}
	}
	return &document{doc: doc}
}

// rules returns the explicit validation rule set for l: gqlparser's default
// rules (without suggestions) plus ours. The depth, field and alias limits
// are not rules: checkLimits runs them first.
func (s *Schema) rules(l Limits) *rules.Rules {
	r := rules.NewRules(
		rules.FieldsOnCorrectTypeRuleWithoutSuggestions,
		rules.FragmentsOnCompositeTypesRule,
		rules.KnownArgumentNamesRuleWithoutSuggestions,
		rules.KnownDirectivesRule,
		rules.KnownFragmentNamesRule,
		rules.KnownRootTypeRule,
		rules.KnownTypeNamesRuleWithoutSuggestions,
		rules.LoneAnonymousOperationRule,
		rules.MaxIntrospectionDepth,
		rules.NoFragmentCyclesRule,
		rules.NoUndefinedVariablesRule,
		rules.NoUnusedFragmentsRule,
		rules.NoUnusedVariablesRule,
		rules.OverlappingFieldsCanBeMergedRule,
		rules.PossibleFragmentSpreadsRule,
		rules.ProvidedRequiredArgumentsRule,
		rules.ScalarLeafsRuleWithoutSuggestions,
		rules.SingleFieldSubscriptionsRule,
		rules.UniqueArgumentNamesRule,
		rules.UniqueDirectivesPerLocationRule,
		rules.UniqueFragmentNamesRule,
		rules.UniqueInputFieldNamesRule,
		rules.UniqueOperationNamesRule,
		rules.UniqueVariableNamesRule,
		rules.ValuesOfCorrectTypeRuleWithoutSuggestions,
		rules.VariablesAreInputTypesRule,
		rules.VariablesInAllowedPositionRule,
	)
	if l.DisableIntrospection {
		r.AddRule("NoIntrospection", noIntrospectionRule)
	}
	return r
}

// convertGQLErrors turns a gqlparser error or error list into request
// errors with the given code.
func convertGQLErrors(code string, err error) []*Error {
	var list gqlerror.List
	var one *gqlerror.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = gqlerror.List{one}
	default:
		return []*Error{newError(code, err.Error())}
	}
	out := make([]*Error, 0, len(list))
	for _, e := range list {
		ge := newError(code, e.Message)
		for _, loc := range e.Locations {
			ge.Locations = append(ge.Locations, Location{Line: loc.Line, Column: loc.Column})
		}
		out = append(out, ge)
	}
	return out
}

// docCache is a bounded LRU of documents. It is safe for concurrent use.
type docCache struct {
	max int

	mu    sync.Mutex // guards ll and items
	ll    *list.List // front = most recently used; values are *docEntry
	items map[docKey]*list.Element
}

type docEntry struct {
	key docKey
	doc *document
}

func newDocCache(max int) *docCache {
	return &docCache{max: max, ll: list.New(), items: make(map[docKey]*list.Element)}
}

// get returns the cached document for k and marks it recently used.
func (c *docCache) get(k docKey) (*document, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*docEntry).doc, true
}

// put stores d under k, evicting the least recently used entry when full.
func (c *docCache) put(k docKey, d *document) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&docEntry{key: k, doc: d})
	if c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*docEntry).key)
	}
}

// len reports the number of cached documents.
func (c *docCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
