package main

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// holdlineLabel marks the Deployments built from the repository's image (the policy checks apply).
const holdlineLabel = "app.kubernetes.io/part-of"

// checkAll runs the custom-resource checks, the Deployment policy and the cross-references.
func checkAll(objects []object, r *report) {
	deployments := map[string]*appsv1.Deployment{}
	topics := map[string]object{}
	kafkas, pgClusters, configMaps := map[string]bool{}, map[string]object{}, map[string]bool{}
	var services []*corev1.Service
	for _, o := range objects {
		if check, ok := customChecks[o.gvk]; ok {
			check(o, r)
		}
		switch typed := o.obj.(type) {
		case *appsv1.Deployment:
			deployments[typed.Name] = typed
		case *corev1.Service:
			services = append(services, typed)
		case *corev1.ConfigMap:
			configMaps[typed.Name] = true
		}
		switch o.gvk {
		case kafkaGVK:
			kafkas[o.name] = true
		case topicGVK:
			name := str(o.raw, "spec", "topicName")
			if name == "" {
				name = o.name
			}
			topics[name] = o
		case pgClusterGVK:
			pgClusters[o.name] = o
		}
	}
	scaled := map[string]string{}
	roles := map[string]map[string]bool{} // Kafka cluster -> node pool roles present
	for _, o := range objects {
		switch o.gvk {
		case nodePoolGVK, topicGVK:
			c := str(o.raw, "metadata", "labels", "strimzi.io/cluster")
			if !kafkas[c] {
				r.add("%s: label strimzi.io/cluster=%q names no Kafka in this render", o, c)
			}
			if o.gvk == nodePoolGVK {
				if roles[c] == nil {
					roles[c] = map[string]bool{}
				}
				for _, role := range list(o.raw, "spec", "roles") {
					roles[c][fmt.Sprint(role)] = true
				}
			}
		case pgDatabaseGVK:
			checkDatabaseRefs(o, pgClusters, r)
		case scaledObjGVK:
			target := str(o.raw, "spec", "scaleTargetRef", "name")
			if deployments[target] == nil {
				r.add("%s: scaleTargetRef %q names no Deployment", o, target)
			}
			scaled[target] = o.name
			checkTriggerTopics(o, topics, r)
		}
	}
	// KRaft: the node pools must provide both controllers and brokers (there is no ZooKeeper)
	for name := range kafkas {
		for _, role := range []string{"controller", "broker"} {
			if !roles[name][role] {
				r.add("Kafka/%s: no KafkaNodePool with the %s role", name, role)
			}
		}
	}
	for _, o := range objects {
		switch typed := o.obj.(type) {
		case *appsv1.Deployment:
			checkDeployment(o, typed, configMaps, r)
		case *corev1.Service:
			if len(typed.Spec.Selector) > 0 && !anyDeploymentMatches(deployments, labels.SelectorFromSet(typed.Spec.Selector)) {
				r.add("%s: selector %v matches no Deployment", o, typed.Spec.Selector)
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := typed.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || deployments[ref.Name] == nil {
				r.add("%s: scaleTargetRef %s/%s names no Deployment", o, ref.Kind, ref.Name)
			}
			if so, both := scaled[ref.Name]; both {
				r.add("%s: Deployment %q is also scaled by ScaledObject %q; KEDA owns its HPA", o, ref.Name, so)
			}
		case *policyv1.PodDisruptionBudget:
			sel, err := metav1.LabelSelectorAsSelector(typed.Spec.Selector)
			if err != nil || sel.Empty() || !anyDeploymentMatches(deployments, sel) {
				r.add("%s: selector matches no Deployment", o)
			}
		}
	}
}

func anyDeploymentMatches(deployments map[string]*appsv1.Deployment, sel labels.Selector) bool {
	for _, d := range deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return true
		}
	}
	return false
}

func checkDatabaseRefs(o object, clusters map[string]object, r *report) {
	clusterName := str(o.raw, "spec", "cluster", "name")
	cluster, ok := clusters[clusterName]
	if !ok {
		r.add("%s: spec.cluster.name %q names no CloudNativePG Cluster", o, clusterName)
		return
	}
	owner := str(o.raw, "spec", "owner")
	for _, role := range list(cluster.raw, "spec", "managed", "roles") {
		if str(role, "name") == owner {
			return
		}
	}
	r.add("%s: owner %q is not a managed role of Cluster %q", o, owner, clusterName)
}

// checkTriggerTopics: the lag trigger must watch a declared topic, and more replicas than the
// topic has partitions would sit idle in the consumer group.
func checkTriggerTopics(o object, topics map[string]object, r *report) {
	maxR, _ := integer(o.raw, "spec", "maxReplicaCount")
	for _, t := range list(o.raw, "spec", "triggers") {
		if str(t, "type") != "kafka" {
			continue
		}
		name := str(t, "metadata", "topic")
		topic, ok := topics[name]
		if !ok {
			r.add("%s: kafka trigger topic %q is not a KafkaTopic in this render", o, name)
			continue
		}
		if partitions, _ := integer(topic.raw, "spec", "partitions"); maxR > partitions {
			r.add("%s: maxReplicaCount %d exceeds the %d partitions of %q", o, maxR, partitions, name)
		}
	}
}

// checkDeployment applies the house policy to Holdline's own Deployments.
func checkDeployment(o object, d *appsv1.Deployment, configMaps map[string]bool, r *report) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		r.add("%s: spec.selector must match the pod template labels", o)
	}
	if d.Labels[holdlineLabel] != "holdline" {
		return
	}
	pod := d.Spec.Template.Spec
	ann := d.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" {
		r.add("%s: pod template needs prometheus.io/scrape \"true\" and prometheus.io/path /metrics", o)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		r.add("%s: pod securityContext.runAsNonRoot must be true", o)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		r.add("%s: automountServiceAccountToken must be false (the services never call the API)", o)
	}
	for _, c := range pod.Containers {
		where := o.String() + " container " + c.Name
		// a pinned image: an overlay sets registry and tag, a rollout never means "whatever is newest"
		if tag := c.Image[strings.LastIndex(c.Image, "/")+1:]; !strings.Contains(tag, ":") || strings.HasSuffix(tag, ":latest") {
			r.add("%s: image %q needs an explicit tag other than latest (set it in the overlay)", where, c.Image)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			r.add("%s: securityContext.readOnlyRootFilesystem must be true", where)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			r.add("%s: securityContext.allowPrivilegeEscalation must be false", where)
		}
		if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) == 0 || sc.Capabilities.Drop[0] != "ALL" {
			r.add("%s: securityContext.capabilities.drop must be [ALL]", where)
		}
		checkProbe(where+" readinessProbe", c.ReadinessProbe, "/readyz", c, r)
		checkProbe(where+" livenessProbe", c.LivenessProbe, "/healthz", c, r)
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[res]; !ok {
				r.add("%s: resources.requests.%s must be set", where, res)
			}
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			r.add("%s: resources.limits.memory must be set", where)
		}
		for _, src := range c.EnvFrom {
			if src.ConfigMapRef != nil && !configMaps[src.ConfigMapRef.Name] {
				r.add("%s: envFrom ConfigMap %q is not in this render", where, src.ConfigMapRef.Name)
			}
		}
	}
}

func checkProbe(where string, p *corev1.Probe, path string, c corev1.Container, r *report) {
	if p == nil || p.HTTPGet == nil {
		r.add("%s: must be an httpGet probe on %s", where, path)
		return
	}
	if p.HTTPGet.Path != path {
		r.add("%s: path is %q, want %q", where, p.HTTPGet.Path, path)
	}
	port := p.HTTPGet.Port.String()
	for _, cp := range c.Ports {
		if cp.Name == port || strconv.Itoa(int(cp.ContainerPort)) == port {
			return
		}
	}
	r.add("%s: port %s is not a container port", where, port)
}
