package scan

// Part says which scan a run's output belongs to, and which share of it:
// what `xdpscan merge` checks before it puts shards together. It is in
// --stats-json and in a sharded scan's result file header.
type Part struct {
	Targets TargetsDigest `json:"targets"`
	Ports   string        `json:"ports"`
	Seed    uint64        `json:"seed"`
	Shard   uint64        `json:"shard"`
	Shards  uint64        `json:"shards"`
}

// PartOf is the part cfg scans.
func PartOf(cfg Config) Part {
	return Part{Targets: DigestTargets(cfg.Targets), Ports: PortsString(cfg.Ports), Seed: cfg.Seed, Shard: cfg.Shard, Shards: cfg.Shards}
}
