package main

import (
	"fmt"
	flag "github.com/spf13/pflag"
	"strconv"
	"strings"
)

// shardValue is --shard: I (0-based, with --shards N), or masscan's
// X/Y (1-based: --shard 1/3 is --shard 0 --shards 3).
type shardValue struct{ f *scanFlags }

func (v shardValue) String() string {
	if v.f == nil {
		return "0"
	}
	if v.f.shards > 1 {
		// The resume file keeps this: both numbers, in one flag.
		return fmt.Sprintf("%d/%d", v.f.shard+1, v.f.shards)
	}
	return strconv.FormatUint(v.f.shard, 10)
}

func (v shardValue) Type() string { return "I|X/Y" } // pflag.Value

func (v shardValue) Set(s string) error {
	x, y, slash := strings.Cut(s, "/")
	if !slash {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want a shard number (0-based, with --shards N) or masscan's X/Y (1-based)")
		}
		v.f.shard = n
		return nil
	}
	xn, err1 := strconv.ParseUint(x, 10, 64)
	yn, err2 := strconv.ParseUint(y, 10, 64)
	if err1 != nil || err2 != nil || xn == 0 || yn == 0 || xn > yn {
		return fmt.Errorf("%q: masscan's form is X/Y with 1 <= X <= Y (--shard 1/3, 2/3, 3/3)", s)
	}
	v.f.shard, v.f.shards = xn-1, yn
	return nil
}

// addShardFlag adds --shard (--shards is beside it in newScanFlags).
func addShardFlag(fs *flag.FlagSet, f *scanFlags) {
	fs.Var(shardValue{f}, "shard", "which shard this run sends: I, 0-based, with --shards N (a Kubernetes Indexed Job's\n"+
		"$(JOB_COMPLETION_INDEX)), or masscan's X/Y, 1-based (--shard 2/3 = --shard 1 --shards 3). Every\n"+
		"shard needs the same --seed; `xdpscan merge` puts their outputs together")
}
