package runner

import (
	"container/list"
	"sync"

	pb "github.com/polytrial/polytrial/protos/gen/go/polytrial/v1"
)

// maxRememberedKeys bounds the answers kept; servers retry within seconds, so
// only a retry of something far older could start a second job.
const maxRememberedKeys = 10000

// keyEntry is the first Run of one deployment key; repeats wait on done.
type keyEntry struct {
	done     chan struct{}
	response *pb.RunResponse
	element  *list.Element
}

// deploymentKeys remembers the answer given to each deployment key. A repeat
// that arrives while the first call runs waits for it; a Run that failed is
// forgotten so a retry runs again.
type deploymentKeys struct {
	mu      sync.Mutex // guards entries and order, never held during a Run
	entries map[string]*keyEntry
	order   *list.List // keys, oldest first
}

func newDeploymentKeys() *deploymentKeys {
	return &deploymentKeys{entries: map[string]*keyEntry{}, order: list.New()}
}

// runOnce returns the first successful answer for key, calling start only when
// no call for key has succeeded or is in flight.
func (k *deploymentKeys) runOnce(key string, start func() (*pb.RunResponse, error)) (*pb.RunResponse, error) {
	for {
		k.mu.Lock()
		entry, found := k.entries[key]
		if !found {
			entry = &keyEntry{done: make(chan struct{})}
			entry.element = k.order.PushBack(key)
			k.entries[key] = entry
			for k.order.Len() > maxRememberedKeys {
				oldest := k.order.Remove(k.order.Front()).(string)
				delete(k.entries, oldest)
			}
		}
		k.mu.Unlock()

		if !found {
			return k.runAsOwner(key, entry, start)
		}
		<-entry.done
		if entry.response != nil {
			return entry.response, nil
		}
		// The first call failed and was forgotten: try to become the owner.
	}
}

func (k *deploymentKeys) runAsOwner(key string, entry *keyEntry, start func() (*pb.RunResponse, error)) (*pb.RunResponse, error) {
	defer close(entry.done)
	response, err := start()
	if err != nil {
		k.mu.Lock()
		if k.entries[key] == entry {
			delete(k.entries, key)
			k.order.Remove(entry.element)
		}
		k.mu.Unlock()
		return nil, err
	}
	entry.response = response
	return response, nil
}
