package main

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/xdpscan/xdpscan/internal/privs"
)

// decodeJob decodes a manifest strictly: a field Kubernetes' types do not
// have (a typo, a field of another version) fails, as the API server's
// strict validation would.
func decodeJob(t *testing.T, b []byte) (*batchv1.Job, error) {
	t.Helper()
	var job batchv1.Job
	err := yaml.UnmarshalStrict(b, &job)
	return &job, err
}

// TestKubernetesJobs: every Job in deploy/kubernetes decodes strictly into
// k8s.io/api's types, is an Indexed Job with one completion per shard, runs
// pod I as shard I of N with one seed (read by the scan's own flag parser),
// and has the least privilege: host network, CAP_BPF, CAP_NET_ADMIN and
// CAP_NET_RAW added to nothing (ALL dropped), not privileged, no escalation.
func TestKubernetesJobs(t *testing.T) {
	files, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("manifests: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			job, err := decodeJob(t, b)
			if err != nil {
				t.Fatalf("strict decode: %v", err)
			}
			if job.APIVersion != "batch/v1" || job.Kind != "Job" {
				t.Errorf("%s %s: want batch/v1 Job", job.APIVersion, job.Kind)
			}
			s := job.Spec
			if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
				t.Fatalf("completionMode %v: want Indexed", s.CompletionMode)
			}
			if s.Completions == nil || s.Parallelism == nil || *s.Completions != *s.Parallelism {
				t.Fatalf("completions %v, parallelism %v: want both, equal", s.Completions, s.Parallelism)
			}
			pod := s.Template.Spec
			if !pod.HostNetwork {
				t.Error("hostNetwork: want true (XDP attaches to the node's interface)")
			}
			if pod.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("restartPolicy %q: want Never (the Job restarts a failed shard)", pod.RestartPolicy)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			checkSecurity(t, c.SecurityContext, pod.SecurityContext)
			checkIndexEnv(t, c.Env)
			for index := range *s.Completions {
				f := shardWiring(t, c, index)
				if f.shard != uint64(index) || f.shards != uint64(*s.Completions) {
					t.Errorf("pod %d runs shard %d of %d: want %d of %d", index, f.shard, f.shards, index, *s.Completions)
				}
				if f.seed == 0 {
					t.Errorf("pod %d: no --seed: the shards would each draw their own permutation", index)
				}
				if f.output == "" && f.format != "ndjson" {
					t.Errorf("pod %d: results to stdout as %q: want --format ndjson (merge reads it)", index, f.format)
				}
			}
		})
	}
}

func checkSecurity(t *testing.T, sc *corev1.SecurityContext, psc *corev1.PodSecurityContext) {
	t.Helper()
	if sc == nil {
		t.Fatal("no securityContext")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged: want false")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation: want false (no_new_privs)")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities.drop %v: want [ALL]", sc.Capabilities)
	}
	var add []string
	for _, c := range sc.Capabilities.Add {
		add = append(add, "CAP_"+string(c))
	}
	slices.Sort(add)
	want := scanNeeds("xdp", "socket", false).caps()
	var wantNames []string
	for _, c := range []privs.Cap{privs.CapBPF, privs.CapNetAdmin, privs.CapNetRaw} {
		if want.Has(c) {
			wantNames = append(wantNames, c.String())
		}
	}
	slices.Sort(wantNames)
	if !slices.Equal(add, wantNames) {
		t.Errorf("capabilities.add %v: want exactly what scan needs, %v", add, wantNames)
	}
	if psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot {
		t.Error("runAsNonRoot: Kubernetes grants added capabilities to uid 0 only")
	}
}

// checkIndexEnv: JOB_COMPLETION_INDEX comes from the pod's index annotation.
func checkIndexEnv(t *testing.T, env []corev1.EnvVar) {
	t.Helper()
	for _, e := range env {
		if e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
			return
		}
	}
	t.Error("no JOB_COMPLETION_INDEX from metadata.annotations['batch.kubernetes.io/job-completion-index']")
}

// shardWiring is the scan flags pod index runs with: the container's
// arguments with JOB_COMPLETION_INDEX expanded as Kubernetes ($(VAR)) or
// the shell ($VAR, "$VAR") would, parsed by the scan's flag set.
func shardWiring(t *testing.T, c corev1.Container, index int32) *scanFlags {
	t.Helper()
	args := c.Args
	if len(c.Command) > 0 && strings.HasSuffix(c.Command[0], "sh") {
		args = shellScanArgs(t, strings.Join(c.Args, "\n"))
	}
	if len(args) == 0 || args[0] != "scan" {
		t.Fatalf("arguments %q: want scan ...", args)
	}
	var expanded []string
	for _, a := range args[1:] {
		a = strings.NewReplacer("$(JOB_COMPLETION_INDEX)", itoa(index), `"$JOB_COMPLETION_INDEX"`, itoa(index),
			"$JOB_COMPLETION_INDEX", itoa(index)).Replace(a)
		expanded = append(expanded, a)
	}
	f, fs := newScanFlags()
	if _, err := parseFlags(fs, expanded); err != nil {
		t.Fatalf("pod %d's arguments %q: %v", index, expanded, err)
	}
	return f
}

// shellScanArgs is the last "exec xdpscan scan ..." line of a shell
// script (backslash-continued), split into words.
func shellScanArgs(t *testing.T, script string) []string {
	t.Helper()
	script = strings.ReplaceAll(script, "\\\n", " ")
	var last string
	sc := bufio.NewScanner(strings.NewReader(script))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "exec xdpscan scan ") && !strings.Contains(line, "--resume") {
			last = line
		}
	}
	if last == "" {
		t.Fatalf("no `exec xdpscan scan` line in %q", script)
	}
	words := strings.Fields(strings.TrimPrefix(last, "exec xdpscan "))
	for i, w := range words {
		words[i] = strings.ReplaceAll(w, `"$out"`, "/results/out.ndjson")
		words[i] = strings.ReplaceAll(words[i], `"$out.stats.json"`, "/results/out.stats.json")
	}
	return words
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

// TestStrictDecodeRefusesUnknownFields: the decoder the test above relies
// on does refuse a misspelt field.
func TestStrictDecodeRefusesUnknownFields(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"misspelt spec field", "apiVersion: batch/v1\nkind: Job\nspec:\n  completionsMode: Indexed\n"},
		{"misspelt pod field", "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      hostNetworks: true\n"},
		{"field of a capability list", "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      containers:\n      - name: x\n        securityContext:\n          capabilities:\n            added: [BPF]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeJob(t, []byte(tt.yaml)); err == nil {
				t.Error("decoded without error")
			}
		})
	}
}

// TestMonitorUnitCapabilities: the systemd unit grants monitor exactly the
// capabilities it needs, no more, and cannot gain others.
func TestMonitorUnitCapabilities(t *testing.T) {
	b, err := os.ReadFile("../../deploy/xdpscan-monitor.service")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = v
		}
	}
	var want []string
	for _, c := range []privs.Cap{privs.CapBPF, privs.CapNetAdmin, privs.CapNetRaw} {
		if monitorNeeds.caps().Has(c) {
			want = append(want, c.String())
		}
	}
	for _, k := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
		got := strings.Fields(settings[k])
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s=%v: want %v (monitorNeeds)", k, got, want)
		}
	}
	for k, v := range map[string]string{"NoNewPrivileges": "yes", "DynamicUser": "yes"} {
		if settings[k] != v {
			t.Errorf("%s=%q: want %q", k, settings[k], v)
		}
	}
	if !strings.Contains(settings["ExecStart"], " monitor ") || !strings.Contains(settings["ExecStart"], "--metrics-addr") {
		t.Errorf("ExecStart=%q: want xdpscan monitor ... --metrics-addr", settings["ExecStart"])
	}
}
