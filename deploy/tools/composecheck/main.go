// Command composecheck loads a Compose file with compose-go (the loader `docker compose` uses,
// which validates against the Compose specification schema) and checks what Holdline relies on:
// every Holdline service is built from the repository's multi-stage Dockerfile (parsed and
// build-checked with BuildKit's parser), runs as a non-root user, has a healthcheck and waits for
// healthy Kafka and PostgreSQL; Prometheus mounts its scrape config and alert rules and scrapes
// each service where Compose runs it; Grafana mounts its provisioning and dashboards.
//
// Usage: composecheck [docker-compose.yml]; exit status 1 on any problem.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

var holdlineServices = map[string]uint32{"intake": 8001, "risk": 8002, "assistance": 8003, "notify": 8004}

type report struct{ problems []string }

func (r *report) add(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func load(path string) (*types.Project, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// an empty environment: the file must work with its own defaults on a fresh machine
	opts, err := cli.NewProjectOptions(
		[]string{abs}, cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithEnv(nil),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

func main() {
	path := "docker-compose.yml"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	project, err := load(path)
	if err != nil {
		fmt.Printf("FAIL %s: not a valid Compose file: %v\n", path, err)
		os.Exit(1)
	}
	r := &report{}
	checkHoldline(project, r)
	checkInfra(project, r)
	checkPrometheus(project, r)
	checkGrafana(project, r)
	names := make([]string, 0, len(project.Services))
	for name, svc := range project.Services {
		image := svc.Image
		if svc.Build != nil {
			image += " (built)"
		}
		names = append(names, fmt.Sprintf("%s=%s", name, image))
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Println("service", n)
	}
	if len(r.problems) > 0 {
		fmt.Printf("FAIL %s: %d problem(s)\n", path, len(r.problems))
		for _, p := range r.problems {
			fmt.Printf("  - %s\n", p)
		}
		os.Exit(1)
	}
	fmt.Printf("ok %s: project %q, %d services\n", path, project.Name, len(project.Services))
}

func healthy(svc types.ServiceConfig) bool {
	hc := svc.HealthCheck
	return hc != nil && !hc.Disable && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}

func checkHoldline(p *types.Project, r *report) {
	dockerfiles := map[string]bool{}
	for name, port := range holdlineServices {
		svc, ok := p.Services[name]
		if !ok {
			r.add("service %s is missing", name)
			continue
		}
		if svc.Build == nil {
			r.add("%s: must be built from the repository (build:)", name)
		} else {
			dockerfiles[filepath.Join(svc.Build.Context, svc.Build.Dockerfile)] = true
		}
		if !healthy(svc) {
			r.add("%s: needs a healthcheck", name)
		} else if !strings.Contains(strings.Join(svc.HealthCheck.Test, " "), fmt.Sprintf(":%d/readyz", port)) {
			r.add("%s: healthcheck must ask /readyz on port %d", name, port)
		}
		if len(svc.Command) != 1 || svc.Command[0] != name {
			r.add("%s: command must be [%q] (the image runs `holdline serve <service>`)", name, name)
		}
		published := false
		for _, pc := range svc.Ports {
			published = published || pc.Target == port
		}
		if !published {
			r.add("%s: container port %d is not published", name, port)
		}
		env := svc.Environment
		for _, key := range []string{
			"HOLDLINE_" + strings.ToUpper(name) + "_DATABASE_URL", "HOLDLINE_KAFKA_BOOTSTRAP", "HOLDLINE_HOST",
		} {
			if v, ok := env[key]; !ok || v == nil || *v == "" {
				r.add("%s: environment %s must be set", name, key)
			}
		}
		if v := env["HOLDLINE_HOST"]; v != nil && *v != "0.0.0.0" {
			r.add("%s: HOLDLINE_HOST must be 0.0.0.0 inside a container, not %q", name, *v)
		}
		for _, dep := range []string{"kafka", "postgres"} {
			if d, ok := svc.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				r.add("%s: must depend on %s with condition service_healthy", name, dep)
			}
		}
		if svc.User == "root" || svc.User == "0" || strings.HasPrefix(svc.User, "0:") {
			r.add("%s: must not override the image user with root", name)
		}
	}
	if len(dockerfiles) != 1 {
		r.add("the four services must share one Dockerfile, found %d", len(dockerfiles))
	}
	for path := range dockerfiles {
		checkDockerfile(path, r)
	}
}

// checkDockerfile parses the Dockerfile with BuildKit's own parser and build checks (what
// `docker build --check` runs): it must be multi-stage, and the final stage must switch to a
// numeric non-root user (Kubernetes' runAsNonRoot can verify only a numeric one) and run
// `holdline serve`.
func checkDockerfile(path string, r *report) {
	data, err := os.ReadFile(path)
	if err != nil {
		r.add("Dockerfile: %v", err)
		return
	}
	parsed, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		r.add("%s: %v", path, err)
		return
	}
	lint := linter.New(&linter.Config{
		Warn: func(rule, _, _, msg string, loc []parser.Range) {
			line := 0
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			r.add("%s:%d: build check %s: %s", path, line, rule, msg)
		},
	})
	stages, _, err := instructions.Parse(parsed.AST, lint)
	if err != nil {
		r.add("%s: %v", path, err)
		return
	}
	if len(stages) < 2 {
		r.add("%s: must be a multi-stage build (found %d FROM)", path, len(stages))
	}
	if len(stages) == 0 {
		return
	}
	user, entrypoint := "", []string(nil)
	for _, cmd := range stages[len(stages)-1].Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
		}
	}
	uid, err := strconv.Atoi(strings.SplitN(user, ":", 2)[0])
	if err != nil || uid == 0 {
		r.add("%s: the final stage must switch to a numeric non-root USER (got %q)", path, user)
	}
	if strings.Join(entrypoint, " ") != "holdline serve" {
		r.add("%s: the final stage's ENTRYPOINT must be [\"holdline\", \"serve\"], got %q", path, entrypoint)
	}
}

func checkInfra(p *types.Project, r *report) {
	for name, image := range map[string]string{"kafka": "apache/kafka:", "postgres": "postgres:"} {
		svc, ok := p.Services[name]
		if !ok {
			r.add("service %s is missing", name)
			continue
		}
		if !strings.HasPrefix(svc.Image, image) {
			r.add("%s: image must be the official %s<tag>, got %q", name, image, svc.Image)
		}
		if !healthy(svc) {
			r.add("%s: needs a healthcheck (the services wait for it)", name)
		}
	}
	if kafka, ok := p.Services["kafka"]; ok {
		roles := kafka.Environment["KAFKA_PROCESS_ROLES"]
		if roles == nil || !strings.Contains(*roles, "controller") {
			r.add("kafka: must run in KRaft mode (KAFKA_PROCESS_ROLES with controller)")
		}
	}
}

// mounts maps container paths to host paths for a service's bind mounts; each host path must exist.
func mounts(svc types.ServiceConfig, r *report) map[string]string {
	out := map[string]string{}
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			r.add("%s: bind mount source %s does not exist", svc.Name, v.Source)
		}
		out[v.Target] = v.Source
	}
	return out
}

func checkPrometheus(p *types.Project, r *report) {
	svc, ok := p.Services["prometheus"]
	if !ok {
		r.add("service prometheus is missing")
		return
	}
	m := mounts(svc, r)
	config, rules := m["/etc/prometheus/prometheus.yml"], m["/etc/prometheus/alerts.yml"]
	if config == "" || rules == "" {
		r.add("prometheus: must mount prometheus.yml and alerts.yml into /etc/prometheus/")
		return
	}
	data, err := os.ReadFile(config)
	if err != nil {
		r.add("prometheus: %v", err)
		return
	}
	text := string(data)
	if !strings.Contains(text, "alerts.yml") {
		r.add("prometheus: %s does not load the rule file alerts.yml", config)
	}
	for name, port := range holdlineServices {
		if !strings.Contains(text, fmt.Sprintf("%s:%d", name, port)) {
			r.add("prometheus: %s does not scrape %s:%d", config, name, port)
		}
	}
}

func checkGrafana(p *types.Project, r *report) {
	svc, ok := p.Services["grafana"]
	if !ok {
		r.add("service grafana is missing")
		return
	}
	m := mounts(svc, r)
	for _, target := range []string{"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"} {
		if m[target] == "" {
			r.add("grafana: must mount %s", target)
		}
	}
	if dir := m["/var/lib/grafana/dashboards"]; dir != "" {
		found, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(found) == 0 {
			r.add("grafana: %s holds no dashboard JSON", dir)
		}
	}
}
