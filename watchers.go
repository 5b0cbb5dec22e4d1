package push

import (
	"sync"
	"sync/atomic"
)

// Watchers is the set of functions registered with a Store's Watch, for
// Store implementations: Add registers one, Notify calls them all without
// taking a lock (publishing stays cheap), Clear drops them all on Close.
// The zero value is an empty set, safe for concurrent use.
type Watchers struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*watcher]
}

type watcher struct{ fn func(Event) }

// Add registers fn until the returned cancel function is called; Store.Watch
// can return what Add returns.
func (ws *Watchers) Add(fn func(Event)) (cancel func()) {
	w := &watcher{fn: fn}
	ws.replace(func(old []*watcher) []*watcher { return append(old[:len(old):len(old)], w) })
	return func() {
		ws.replace(func(old []*watcher) []*watcher {
			var kept []*watcher
			for _, x := range old {
				if x != w {
					kept = append(kept, x)
				}
			}
			return kept
		})
	}
}

// replace swaps the list for change(list), under the lock of writers.
func (ws *Watchers) replace(change func([]*watcher) []*watcher) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var old []*watcher
	if p := ws.list.Load(); p != nil {
		old = *p
	}
	list := change(old)
	ws.list.Store(&list)
}

// Notify calls every registered function with ev, in registration order.
func (ws *Watchers) Notify(ev Event) {
	if p := ws.list.Load(); p != nil {
		for _, w := range *p {
			w.fn(ev)
		}
	}
}

// Clear removes every registered function.
func (ws *Watchers) Clear() {
	ws.replace(func([]*watcher) []*watcher { return nil })
}
