package flow

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cbnats/circuitbreaker/shared/fail"
	"github.com/cbnats/circuitbreaker/shared/rules"
)

// tr builds a transition from "from1,from2" to to.
func tr(id, from, to string) Transition {
	return Transition{ID: id, FromPlaces: strings.Split(from, ","), ToPlace: to, Conditions: []string{}, Rules: []rules.Rule{}}
}

// documentReview is scenario S1's workflow.
func documentReview() *Definition {
	return &Definition{
		ID: "doc-review", Name: "NATS Document Review Process",
		Places:       []string{"draft", "review", "approved", "published", "rejected"},
		InitialPlace: "draft",
		Transitions: []Transition{
			tr("submit_for_review", "draft", "review"),
			tr("approve", "review", "approved"),
			tr("reject", "review", "rejected"),
			tr("publish", "approved", "published"),
		},
	}
}

// appDevelopment is scenario S3's workflow.
func appDevelopment() *Definition {
	return &Definition{
		ID: "app-dev", Name: "Application Development Process",
		Places:       []string{"planning", "development", "testing", "staging", "production", "maintenance"},
		InitialPlace: "planning",
		Transitions: []Transition{
			tr("start_development", "planning", "development"),
			tr("submit_for_testing", "development", "testing"),
			tr("back_to_development", "testing", "development"),
			tr("promote_to_staging", "testing", "staging"),
			tr("deploy_to_production", "staging", "production"),
			tr("enter_maintenance", "production", "maintenance"),
			tr("back_to_planning", "maintenance", "planning"),
		},
	}
}

// orderFulfillment is scenario S5's workflow, with cancel split in two
// transitions sharing an id.
func orderFulfillment() *Definition {
	return &Definition{
		ID: "order_fulfillment", Name: "E-commerce Order Fulfillment",
		Places:       []string{"cart", "payment_pending", "paid", "shipped", "delivered", "cancelled"},
		InitialPlace: "cart",
		Transitions: []Transition{
			tr("checkout", "cart", "payment_pending"),
			tr("pay", "payment_pending", "paid"),
			tr("ship", "paid", "shipped"),
			tr("deliver", "shipped", "delivered"),
			tr("cancel", "cart", "cancelled"),
			tr("cancel", "payment_pending", "cancelled"),
		},
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"draft", true}, {"Step_2-b", true}, {"123e4567-e89b-12d3-a456-426614174000", true},
		{strings.Repeat("a", 128), true}, {strings.Repeat("a", 129), false},
		{"", false}, {"a.b", false}, {"a b", false}, {"*", false}, {">", false}, {"é", false},
	}
	for _, tc := range tests {
		if got := ValidName(tc.in); got != tc.want {
			t.Errorf("ValidName(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	many := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = "p" + strconv.Itoa(i)
		}
		return s
	}
	badRule := rules.Rule{ID: "r1", Condition: rules.Condition{Type: "Foo"}}
	okRule := rules.Rule{ID: "r1", Condition: rules.Condition{Type: rules.FieldExists, Field: "x"}}
	tests := []struct {
		name   string
		change func(d *Definition)
		want   string // "" = valid
	}{
		{"S1 valid", func(*Definition) {}, ""},
		{"empty id allowed", func(d *Definition) { d.ID = "" }, ""},
		{"initial place missing", func(d *Definition) { d.InitialPlace = "x" }, "Initial place 'x' not found in places"},
		{"invalid from_place", func(d *Definition) { d.Transitions[1].FromPlaces = []string{"p"} }, "Transition 'approve' references invalid from_place 'p'"},
		{"invalid to_place", func(d *Definition) { d.Transitions[1].ToPlace = "p" }, "Transition 'approve' references invalid to_place 'p'"},
		{"empty name", func(d *Definition) { d.Name = "  " }, "name must not be empty"},
		{"no places", func(d *Definition) { d.Places = nil }, "workflow has no places"},
		{"duplicate place", func(d *Definition) { d.Places = append(d.Places, "review") }, "duplicate place 'review'"},
		{"unsafe workflow id", func(d *Definition) { d.ID = "a.b" }, "workflow id 'a.b' is not allowed: use letters, digits, '_' and '-' (at most 128), optionally as tenant::name"},
		{"unsafe place", func(d *Definition) { d.Places[0] = "dr*ft" }, "place 'dr*ft' is not allowed: use letters, digits, '_' and '-' (at most 128)"},
		{"unsafe transition id", func(d *Definition) { d.Transitions[0].ID = "a>" }, "transition id 'a>' is not allowed: use letters, digits, '_' and '-' (at most 128)"},
		{"no from places", func(d *Definition) { d.Transitions[0].FromPlaces = nil }, "Transition 'submit_for_review' has no from_places"},
		{"duplicate from place", func(d *Definition) { d.Transitions[0].FromPlaces = []string{"draft", "draft"} }, "Transition 'submit_for_review' lists from_place 'draft' twice"},
		{"same id overlapping", func(d *Definition) { d.Transitions = append(d.Transitions, tr("approve", "draft,review", "published")) }, "Transition 'approve' is defined more than once from place 'review'"},
		{"same id disjoint", func(d *Definition) { d.Transitions = append(d.Transitions, tr("approve", "draft", "approved")) }, ""},
		{"unknown condition", func(d *Definition) { d.Transitions[0].Conditions = []string{"has_title", "x"} }, "Transition 'submit_for_review' has unknown condition 'x'"},
		{"known conditions", func(d *Definition) { d.Transitions[0].Conditions = []string{"has_title", "high_priority"} }, ""},
		{"bad rule", func(d *Definition) { d.Transitions[0].Rules = []rules.Rule{badRule} }, "Transition 'submit_for_review': rule 'r1': unknown condition type 'Foo'"},
		{"duplicate rule id", func(d *Definition) { d.Transitions[0].Rules = []rules.Rule{okRule, okRule} }, "Transition 'submit_for_review' has duplicate rule id 'r1'"},
		{"too many places", func(d *Definition) { d.Places = many(MaxPlaces + 1); d.InitialPlace = d.Places[0] }, "too many places: 1001 (at most 1000)"},
		{"too many transitions", func(d *Definition) {
			d.Transitions = slices.Repeat(d.Transitions[:1], MaxTransitions+1)
		}, "too many transitions: 1001 (at most 1000)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := documentReview()
			tc.change(d)
			err := d.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, fail.ErrBadInput) {
				t.Fatalf("got %v, want BadInput", err)
			}
			if got, want := err.Error(), "Invalid workflow: "+tc.want; got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestScenarioDefinitionsValid(t *testing.T) {
	for name, d := range map[string]*Definition{"S1": documentReview(), "S3": appDevelopment(), "S5": orderFulfillment()} {
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name                          string
		def                           *Definition
		unreachable, terminal, deadTr []string
	}{
		{"S1", documentReview(), []string{}, []string{"published", "rejected"}, []string{}},
		{"S3 cycles", appDevelopment(), []string{}, []string{}, []string{}},
		{"S5", orderFulfillment(), []string{}, []string{"delivered", "cancelled"}, []string{}},
		{"unreachable and dead", &Definition{
			Places: []string{"a", "b", "c", "d"}, InitialPlace: "a",
			Transitions: []Transition{tr("ab", "a", "b"), tr("cd", "c", "d"), tr("loop", "b", "b"), tr("dc", "d", "c")},
		}, []string{"c", "d"}, []string{"b"}, []string{"cd", "dc"}},
		{"empty", &Definition{Places: []string{"only"}, InitialPlace: "only"}, []string{}, []string{"only"}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := Analyze(tc.def)
			check := func(what string, got, want []string) {
				if got == nil || !slices.Equal(got, want) {
					t.Errorf("%s = %#v, want %#v", what, got, want)
				}
			}
			check("unreachable", a.UnreachablePlaces, tc.unreachable)
			check("terminal", a.TerminalPlaces, tc.terminal)
			check("dead", a.DeadTransitions, tc.deadTr)
		})
	}
}
