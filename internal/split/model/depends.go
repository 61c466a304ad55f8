package splitmodel

import (
	"container/heap"
	"slices"
)

// Dependencies returns the flags d's IN_SPLIT matchers name, in the order of their first
// mention: a definition that names a flag can only be written in an environment where
// that flag exists.
func (d *Definition) Dependencies() []Depends {
	var out []Depends
	for _, r := range d.Rules {
		for _, m := range r.Condition.Matchers {
			if m.Depends == nil || m.Depends.SplitName == "" {
				continue
			}
			if !slices.Contains(out, *m.Depends) {
				out = append(out, *m.Depends)
			}
		}
	}
	return out
}

// DependencyNames returns the names of the flags d depends on, in the order of their
// first mention, each once.
func (d *Definition) DependencyNames() []string {
	var out []string
	for _, dep := range d.Dependencies() {
		if !slices.Contains(out, dep.SplitName) {
			out = append(out, dep.SplitName)
		}
	}
	return out
}

// FindCycle returns a dependency cycle of graph (each flag → the flags it names) as the
// path that closes it, e.g. [a b c a], or nil when there is none. It is deterministic:
// flags are visited in sorted order, names in the order given.
func FindCycle(graph map[string][]string) []string {
	const (
		unseen = iota
		open
		done
	)
	state := map[string]int{}
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = open
		stack = append(stack, n)
		for _, m := range graph[n] {
			switch state[m] {
			case open:
				i := slices.Index(stack, m)
				found = append(slices.Clone(stack[i:]), m)
				return true
			case unseen:
				if _, known := graph[m]; known && visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return false
	}
	names := make([]string, 0, len(graph))
	for n := range graph {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if state[n] == unseen && visit(n) {
			return found
		}
	}
	return nil
}

// TopologicalOrder orders nodes so that every node comes after the nodes it depends on
// (deps[n], restricted to nodes), keeping the given order wherever the dependencies
// allow: of the nodes whose dependencies are placed, the earliest given goes next. Nodes
// on a cycle (and those after them) keep their given order after everything else; ok is
// false then.
func TopologicalOrder(nodes []string, deps map[string][]string) (order []string, ok bool) {
	index := make(map[string]int, len(nodes))
	for i, n := range nodes {
		index[n] = i
	}
	waiting := make([]int, len(nodes))      // unplaced dependencies of each node
	dependents := make([][]int, len(nodes)) // nodes waiting for each node
	for i, n := range nodes {
		seen := map[int]bool{}
		for _, d := range deps[n] {
			j, in := index[d]
			if !in || j == i || seen[j] {
				continue
			}
			seen[j] = true
			waiting[i]++
			dependents[j] = append(dependents[j], i)
		}
	}
	ready := &intHeap{}
	for i := range nodes {
		if waiting[i] == 0 {
			heap.Push(ready, i)
		}
	}
	placed := make([]bool, len(nodes))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		placed[i] = true
		order = append(order, nodes[i])
		for _, j := range dependents[i] {
			if waiting[j]--; waiting[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	if len(order) == len(nodes) {
		return order, true
	}
	for i, n := range nodes {
		if !placed[i] {
			order = append(order, n)
		}
	}
	return order, false
}

// intHeap is a min-heap of indexes.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
