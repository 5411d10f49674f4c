package bench

import "github.com/xdpscan/xdpscan/internal/netdev"

// LinkStats are the counters of one veth end that attribute loss (in
// results.json as they always were).
type LinkStats = netdev.Counters
