package gql

import (
	"container/list"
	"crypto/sha256"
	"errors"
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
	doc  *ast.QueryDocument
	errs []*Error
}

// docKey identifies a cached document: the query text's hash plus the
// limits that took part in validating it.
type docKey struct {
	sum                  [32]byte
	tokens, depth, alias int
	noIntrospection      bool
}

// loadDocument parses and validates query, using the cache.
func (s *Schema) loadDocument(query string, l Limits) *document {
	key := docKey{sha256.Sum256([]byte(query)), l.MaxTokens, l.MaxDepth, l.MaxAliases, l.DisableIntrospection}
	if d, ok := s.docs.get(key); ok {
		return d
	}
	d := s.parseAndValidate(query, l)
	s.docs.put(key, d)
	return d
}

// parseAndValidate runs the parser with a token limit and then the
// validation rules.
func (s *Schema) parseAndValidate(query string, l Limits) *document {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, l.MaxTokens)
	if err != nil {
		return &document{errs: convertGQLErrors(CodeParseFailed, err)}
	}
	errs := validator.ValidateWithRules(s.schema, doc, s.rules(l))
	if len(errs) > 0 {
		return &document{errs: convertGQLErrors(CodeValidationFailed, errs)}
	}
	return &document{doc: doc}
}

// rules returns the explicit validation rule set for l: gqlparser's default
// rules (without suggestions) plus ours.
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
	r.AddRule("MaxDepth", maxDepthRule(l.MaxDepth))
	r.AddRule("MaxAliases", maxAliasesRule(l.MaxAliases))
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
