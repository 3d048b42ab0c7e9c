package main

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The custom resources Holdline uses, each with the fields it relies on (schemas of the operators'
// CRDs are not vendored here, so only these are checked; the operators validate the rest).
var (
	kafkaGVK      = schema.GroupVersionKind{Group: "kafka.strimzi.io", Version: "v1beta2", Kind: "Kafka"}
	nodePoolGVK   = schema.GroupVersionKind{Group: "kafka.strimzi.io", Version: "v1beta2", Kind: "KafkaNodePool"}
	topicGVK      = schema.GroupVersionKind{Group: "kafka.strimzi.io", Version: "v1beta2", Kind: "KafkaTopic"}
	pgClusterGVK  = schema.GroupVersionKind{Group: "postgresql.cnpg.io", Version: "v1", Kind: "Cluster"}
	pgDatabaseGVK = schema.GroupVersionKind{Group: "postgresql.cnpg.io", Version: "v1", Kind: "Database"}
	scaledObjGVK  = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}
	svcMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}
	promRuleGVK   = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"}
	customChecks  = map[schema.GroupVersionKind]func(object, *report){
		kafkaGVK:      checkKafka,
		nodePoolGVK:   checkNodePool,
		topicGVK:      checkTopic,
		pgClusterGVK:  checkPGCluster,
		pgDatabaseGVK: checkPGDatabase,
		scaledObjGVK:  checkScaledObject,
		svcMonitorGVK: checkServiceMonitor,
		promRuleGVK:   checkPrometheusRule,
	}
)

// get walks a decoded YAML map along keys; nil when any step is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

// integer reads a whole number (YAML numbers decode as float64); ok is false when absent or not whole.
func integer(v any, keys ...string) (int, bool) {
	f, ok := get(v, keys...).(float64)
	if !ok || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

func list(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

func requireString(o object, r *report, keys ...string) string {
	s := str(o.raw, keys...)
	if s == "" {
		r.add("%s: %s must be a non-empty string", o, dotted(keys))
	}
	return s
}

func requireInt(o object, r *report, min int, keys ...string) int {
	n, ok := integer(o.raw, keys...)
	if !ok || n < min {
		r.add("%s: %s must be an integer >= %d", o, dotted(keys), min)
	}
	return n
}

func requireMap(o object, r *report, keys ...string) map[string]any {
	m, ok := get(o.raw, keys...).(map[string]any)
	if !ok {
		r.add("%s: %s must be a mapping", o, dotted(keys))
	}
	return m
}

func dotted(keys []string) string {
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += "."
		}
		out += k
	}
	return out
}

func checkKafka(o object, r *report) {
	if len(list(o.raw, "spec", "kafka", "listeners")) == 0 {
		r.add("%s: spec.kafka.listeners must list at least one listener", o)
	}
	for _, l := range list(o.raw, "spec", "kafka", "listeners") {
		if str(l, "name") == "" || str(l, "type") == "" {
			r.add("%s: every listener needs a name and a type", o)
		}
		if _, ok := integer(l, "port"); !ok {
			r.add("%s: listener %q needs a port", o, str(l, "name"))
		}
	}
	requireMap(o, r, "spec", "kafka", "config")
	for _, k := range []string{"default.replication.factor", "min.insync.replicas"} {
		if _, ok := integer(o.raw, "spec", "kafka", "config", k); !ok {
			r.add("%s: spec.kafka.config[%q] must be set", o, k)
		}
	}
	requireMap(o, r, "spec", "entityOperator", "topicOperator")
}

func checkNodePool(o object, r *report) {
	requireString(o, r, "metadata", "labels", "strimzi.io/cluster")
	requireInt(o, r, 1, "spec", "replicas")
	roles := list(o.raw, "spec", "roles")
	if len(roles) == 0 {
		r.add("%s: spec.roles must name controller and/or broker", o)
	}
	for _, role := range roles {
		if role != "controller" && role != "broker" {
			r.add("%s: spec.roles: %v is not controller or broker", o, role)
		}
	}
	requireString(o, r, "spec", "storage", "type")
}

func checkTopic(o object, r *report) {
	requireString(o, r, "metadata", "labels", "strimzi.io/cluster")
	requireInt(o, r, 1, "spec", "partitions")
	requireInt(o, r, 1, "spec", "replicas")
	requireMap(o, r, "spec", "config")
}

func checkPGCluster(o object, r *report) {
	requireInt(o, r, 1, "spec", "instances")
	requireString(o, r, "spec", "storage", "size")
	for _, role := range list(o.raw, "spec", "managed", "roles") {
		if str(role, "name") == "" || str(role, "passwordSecret", "name") == "" {
			r.add("%s: every managed role needs a name and passwordSecret.name", o)
		}
	}
}

func checkPGDatabase(o object, r *report) {
	requireString(o, r, "spec", "name")
	requireString(o, r, "spec", "owner")
	requireString(o, r, "spec", "cluster", "name")
}

func checkScaledObject(o object, r *report) {
	requireString(o, r, "spec", "scaleTargetRef", "name")
	minR, _ := integer(o.raw, "spec", "minReplicaCount")
	maxR := requireInt(o, r, 1, "spec", "maxReplicaCount")
	if minR > maxR {
		r.add("%s: minReplicaCount %d > maxReplicaCount %d", o, minR, maxR)
	}
	triggers := list(o.raw, "spec", "triggers")
	if len(triggers) == 0 {
		r.add("%s: spec.triggers must not be empty", o)
	}
	for _, t := range triggers {
		if str(t, "type") != "kafka" {
			continue
		}
		for _, k := range []string{"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} {
			if str(t, "metadata", k) == "" {
				r.add("%s: kafka trigger metadata.%s must be a non-empty string", o, k)
			}
		}
	}
}

func checkServiceMonitor(o object, r *report) {
	requireMap(o, r, "spec", "selector")
	endpoints := list(o.raw, "spec", "endpoints")
	if len(endpoints) == 0 {
		r.add("%s: spec.endpoints must not be empty", o)
	}
	for _, e := range endpoints {
		if str(e, "port") == "" {
			r.add("%s: every endpoint needs a named port", o)
		}
	}
}

func checkPrometheusRule(o object, r *report) {
	groups := list(o.raw, "spec", "groups")
	if len(groups) == 0 {
		r.add("%s: spec.groups must not be empty", o)
	}
	for _, g := range groups {
		for _, rule := range list(g, "rules") {
			if str(rule, "expr") == "" || (str(rule, "alert") == "" && str(rule, "record") == "") {
				r.add("%s: group %q: every rule needs expr and alert or record", o, str(g, "name"))
			}
		}
	}
}
