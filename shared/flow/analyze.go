package flow

// Analysis is what static analysis of a definition finds.
type Analysis struct {
	UnreachablePlaces []string `json:"unreachablePlaces"` // not reachable from InitialPlace
	TerminalPlaces    []string `json:"terminalPlaces"`    // no transition leaves them
	DeadTransitions   []string `json:"deadTransitions"`   // ids of transitions none of whose fromPlaces is reachable
}

// Analyze finds the unreachable places, terminal places and dead transitions
// of d, ignoring guards. A place whose only outgoing transitions are
// self-loops is terminal. A transition id appears once in DeadTransitions if
// any transition with that id is dead. Slices are never nil and follow
// definition order.
func Analyze(d *Definition) Analysis {
	reach := reachable(d)
	leaves := map[string]bool{}
	for _, t := range d.Transitions {
		for _, p := range t.FromPlaces {
			if p != t.ToPlace {
				leaves[p] = true
			}
		}
	}
	a := Analysis{UnreachablePlaces: []string{}, TerminalPlaces: []string{}, DeadTransitions: []string{}}
	for _, p := range d.Places {
		if !reach[p] {
			a.UnreachablePlaces = append(a.UnreachablePlaces, p)
		}
		if !leaves[p] {
			a.TerminalPlaces = append(a.TerminalPlaces, p)
		}
	}
	listed := map[string]bool{}
	for _, t := range d.Transitions {
		if !anyIn(t.FromPlaces, reach) && !listed[t.ID] {
			listed[t.ID] = true
			a.DeadTransitions = append(a.DeadTransitions, t.ID)
		}
	}
	return a
}

// reachable returns the places reachable from d's initial place.
func reachable(d *Definition) map[string]bool {
	next := map[string][]string{}
	for _, t := range d.Transitions {
		for _, p := range t.FromPlaces {
			next[p] = append(next[p], t.ToPlace)
		}
	}
	reach := map[string]bool{d.InitialPlace: true}
	queue := []string{d.InitialPlace}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range next[p] {
			if !reach[q] {
				reach[q] = true
				queue = append(queue, q)
			}
		}
	}
	return reach
}

// anyIn reports whether any element of s is in set.
func anyIn(s []string, set map[string]bool) bool {
	for _, v := range s {
		if set[v] {
			return true
		}
	}
	return false
}
