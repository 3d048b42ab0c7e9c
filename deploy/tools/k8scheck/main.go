// Command k8scheck renders kustomizations the way `kubectl kustomize` does and checks the result.
//
// Built-in kinds are decoded strictly with the k8s.io/api types of the groups Holdline uses (an
// unknown or duplicated field is an error; a kind from another group is reported). Custom resources (Strimzi, CloudNativePG, KEDA, Prometheus Operator) are checked for
// their apiVersion, kind, name and the fields Holdline relies on. Then cross-references are
// checked: what a Service, HPA, ScaledObject, PDB or Database points at must exist, and every
// Holdline Deployment must run non-root on a read-only root filesystem with probes and resources.
//
// Usage: k8scheck DIR... (each DIR holds a kustomization.yaml); exit status 1 on any problem.
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation"
)

// object is one rendered manifest: its identity, its typed form (built-in kinds) and its raw map.
type object struct {
	gvk  schema.GroupVersionKind
	name string
	raw  map[string]any
	obj  runtime.Object
}

func (o object) String() string { return o.gvk.Kind + "/" + o.name }

// report collects problems for one kustomization.
type report struct{ problems []string }

func (r *report) add(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func render(dir string) ([][]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	var docs [][]byte
	for _, res := range m.Resources() {
		b, err := res.AsYAML()
		if err != nil {
			return nil, err
		}
		docs = append(docs, b)
	}
	return docs, nil
}

func decode(docs [][]byte, r *report) []object {
	strict := serializer.NewCodecFactory(builtin, serializer.EnableStrict).UniversalDeserializer()
	var out []object
	for _, doc := range docs {
		raw := map[string]any{}
		if err := yaml.Unmarshal(doc, &raw); err != nil {
			r.add("unparsable document: %v", err)
			continue
		}
		apiVersion, _ := raw["apiVersion"].(string)
		kind, _ := raw["kind"].(string)
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil || kind == "" {
			r.add("document without a valid apiVersion/kind: %q %q", apiVersion, kind)
			continue
		}
		o := object{gvk: gv.WithKind(kind), raw: raw, name: str(raw, "metadata", "name")}
		if o.name == "" {
			r.add("%s: metadata.name is missing", o.gvk.Kind)
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(o.name) {
			r.add("%s: metadata.name %q: %s", o, o.name, msg)
		}
		if builtin.Recognizes(o.gvk) {
			obj, _, err := strict.Decode(doc, nil, nil)
			if err != nil {
				r.add("%s: %v", o, err)
				continue
			}
			o.obj = obj
		} else if _, known := customChecks[o.gvk]; !known {
			r.add("%s: %s is neither a built-in kind Holdline uses nor a custom resource it knows", o, o.gvk)
			continue
		}
		out = append(out, o)
	}
	return out
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: k8scheck KUSTOMIZATION_DIR...")
		os.Exit(2)
	}
	failed := false
	for _, dir := range os.Args[1:] {
		r := &report{}
		docs, err := render(dir)
		if err != nil {
			r.add("kustomize: %v", err)
		}
		objects := decode(docs, r)
		checkAll(objects, r)
		kinds := map[string]int{}
		for _, o := range objects {
			kinds[o.gvk.Kind]++
		}
		var summary []string
		for k, n := range kinds {
			summary = append(summary, fmt.Sprintf("%s=%d", k, n))
		}
		sort.Strings(summary)
		if len(r.problems) > 0 {
			failed = true
			fmt.Printf("FAIL %s: %d problem(s)\n", dir, len(r.problems))
			for _, p := range r.problems {
				fmt.Printf("  - %s\n", p)
			}
			continue
		}
		fmt.Printf("ok %s: %d objects (%s)\n", dir, len(objects), strings.Join(summary, " "))
	}
	if failed {
		os.Exit(1)
	}
}
