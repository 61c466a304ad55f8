package webhook

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// deliveries remembers the most recently seen delivery ids, so a host's retry or
// redelivery of a push does not trigger a second sync.
type deliveries struct {
	mu    sync.Mutex
	max   int
	order *list.List               // of string keys, most recently seen first
	index map[string]*list.Element // key → element in order
}

func newDeliveries(max int) *deliveries {
	return &deliveries{max: max, order: list.New(), index: make(map[string]*list.Element, max)}
}

// maxKeyLen bounds the memory one remembered id takes; longer ids are hashed.
const maxKeyLen = 128

// remove forgets a delivery, so that the host's retry of a delivery refused for now
// (rate limited) is not taken for a duplicate.
func (d *deliveries) remove(provider, id string) {
	if id == "" {
		return
	}
	key := d.key(provider, id)
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.index[key]; ok {
		d.order.Remove(e)
		delete(d.index, key)
	}
}

func (d *deliveries) key(provider, id string) string {
	key := provider + " " + id
	if len(key) > maxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = provider + " sha256:" + hex.EncodeToString(sum[:])
	}
	return key
}

// add records a delivery and reports whether it was new. A delivery without an id is
// always new: there is nothing to recognise it by.
func (d *deliveries) add(provider, id string) bool {
	if id == "" {
		return true
	}
	key := d.key(provider, id)
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.index[key]; ok {
		d.order.MoveToFront(e)
		return false
	}
	d.index[key] = d.order.PushFront(key)
	if d.order.Len() > d.max {
		oldest := d.order.Back()
		d.order.Remove(oldest)
		delete(d.index, oldest.Value.(string))
	}
	return true
}
