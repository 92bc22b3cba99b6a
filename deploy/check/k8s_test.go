package check

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/wxmass/wxmass/account"
)

// kustomization is the part of kustomization.yaml deploy/k8s uses (decoded
// strictly: an unknown field is an error).
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) deploy/k8s uses, decoded strictly.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Authorization *struct {
				Type        string                   `json:"type"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// k8sObjects are deploy/k8s's manifests, decoded.
type k8sObjects struct {
	kust        kustomization
	namespaces  []*corev1.Namespace
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	claims      map[string]*corev1.PersistentVolumeClaim
	monitors    []serviceMonitor
}

// loadK8s decodes every manifest kustomization.yaml lists, strictly, into
// the Kubernetes API's Go types: unknown or duplicate fields, wrong types
// and unknown kinds are errors.
func loadK8s(t *testing.T) k8sObjects {
	t.Helper()
	o := k8sObjects{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		claims: map[string]*corev1.PersistentVolumeClaim{}}
	require.NoError(t, yaml.UnmarshalStrict(readFile(t, deployPath("k8s", "kustomization.yaml")), &o.kust), "kustomization.yaml")
	require.Equal(t, "kustomize.config.k8s.io/v1beta1", o.kust.APIVersion)
	require.Equal(t, "Kustomization", o.kust.Kind)

	// Every manifest of the directory is listed, and only those.
	files, err := filepath.Glob(deployPath("k8s", "*.yaml"))
	require.NoError(t, err)
	var manifests []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			manifests = append(manifests, b)
		}
	}
	listed := slices.Clone(o.kust.Resources)
	slices.Sort(listed)
	require.Equal(t, manifests, listed, "kustomization.yaml resources vs the manifests in deploy/k8s")

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme} {
		require.NoError(t, add(scheme))
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	for _, file := range o.kust.Resources {
		r := utilyaml.NewYAMLReader(bufioReader(readFile(t, deployPath("k8s", file))))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, file)
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var tm metav1.TypeMeta
			require.NoError(t, yaml.Unmarshal(doc, &tm), file)
			if tm.Kind == "ServiceMonitor" {
				var sm serviceMonitor
				require.NoError(t, yaml.UnmarshalStrict(doc, &sm), "%s: ServiceMonitor", file)
				require.Equal(t, "monitoring.coreos.com/v1", sm.APIVersion, file)
				o.monitors = append(o.monitors, sm)
				continue
			}
			obj, gvk, err := decoder.Decode(doc, nil, nil)
			require.NoError(t, err, "%s: %s", file, tm.Kind)
			meta := obj.(metav1.Object)
			require.Emptyf(t, validation.IsDNS1123Subdomain(meta.GetName()), "%s: %s name %q", file, gvk.Kind, meta.GetName())
			if gvk.Kind != "Namespace" {
				require.Equalf(t, o.kust.Namespace, meta.GetNamespace(), "%s: %s %s namespace", file, gvk.Kind, meta.GetName())
			}
			switch v := obj.(type) {
			case *corev1.Namespace:
				o.namespaces = append(o.namespaces, v)
			case *corev1.ConfigMap:
				o.configMaps[v.Name] = v
			case *corev1.Secret:
				o.secrets[v.Name] = v
			case *appsv1.Deployment:
				o.deployments[v.Name] = v
			case *corev1.Service:
				o.services[v.Name] = v
			case *policyv1.PodDisruptionBudget:
				o.pdbs[v.Name] = v
			case *corev1.PersistentVolumeClaim:
				o.claims[v.Name] = v
			default:
				t.Fatalf("%s: %s is not checked", file, gvk)
			}
		}
	}
	return o
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func stripComments(doc []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// secretData is a Secret's values, from data or stringData.
func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

func selectorMatches(t *testing.T, sel *metav1.LabelSelector, set map[string]string) bool {
	t.Helper()
	require.NotNil(t, sel)
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err)
	require.False(t, s.Empty(), "an empty selector selects everything")
	return s.Matches(labels.Set(set))
}

// TestKubernetes checks deploy/k8s: every manifest decodes strictly into the
// Kubernetes API types, and the objects fit together and with wxmass.
func TestKubernetes(t *testing.T) {
	t.Parallel()
	o := loadK8s(t)
	require.Len(t, o.namespaces, 1)
	require.Equal(t, o.kust.Namespace, o.namespaces[0].Name)
	require.Equal(t, "restricted", o.namespaces[0].Labels["pod-security.kubernetes.io/enforce"], "Pod Security Standard")

	serve, worker := o.deployments["wxmass-serve"], o.deployments["wxmass-worker"]
	require.NotNil(t, serve, "Deployment wxmass-serve")
	require.NotNil(t, worker, "Deployment wxmass-worker")
	require.Len(t, o.deployments, 2)
	require.EqualValues(t, 2, *serve.Spec.Replicas, "serve replicas")
	require.EqualValues(t, 3, *worker.Spec.Replicas, "worker replicas")

	for _, d := range o.deployments {
		t.Run(d.Name, func(t *testing.T) { checkDeployment(t, o, d) })
	}
	// The Deployments select their own pods only.
	require.False(t, selectorMatches(t, serve.Spec.Selector, worker.Spec.Template.Labels), "serve's selector takes worker pods")
	require.False(t, selectorMatches(t, worker.Spec.Selector, serve.Spec.Template.Labels), "worker's selector takes serve pods")

	// Services select the pods of exactly one Deployment, on ports they
	// have.
	require.Contains(t, o.services, "wxmass-serve")
	for _, svc := range o.services {
		d := onlyDeployment(t, o, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, "Service "+svc.Name)
		for _, p := range svc.Spec.Ports {
			_, ok := containerPort(d.Spec.Template.Spec.Containers[0], p.TargetPort)
			require.Truef(t, ok, "Service %s port %s: target %s is not a port of %s", svc.Name, p.Name, p.TargetPort.String(), d.Name)
		}
	}

	// PodDisruptionBudgets: one per Deployment, that lets a drain proceed.
	require.Len(t, o.pdbs, 2)
	// The archive's claim is shared by serve and the workers, so it must be
	// ReadWriteMany, and every claim a Deployment mounts exists.
	for _, d := range o.deployments {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				c, ok := o.claims[v.PersistentVolumeClaim.ClaimName]
				require.Truef(t, ok, "%s mounts a claim %s that is not defined", d.Name, v.PersistentVolumeClaim.ClaimName)
				require.Contains(t, c.Spec.AccessModes, corev1.ReadWriteMany, "claim %s", c.Name)
			}
		}
	}
	covered := map[string]bool{}
	for _, pdb := range o.pdbs {
		d := onlyDeployment(t, o, pdb.Spec.Selector, "PodDisruptionBudget "+pdb.Name)
		covered[d.Name] = true
		replicas := int(*d.Spec.Replicas)
		switch {
		case pdb.Spec.MinAvailable != nil:
			n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, replicas, true)
			require.NoError(t, err)
			require.Lessf(t, n, replicas, "PodDisruptionBudget %s: minAvailable %d of %d replicas blocks every drain", pdb.Name, n, replicas)
		case pdb.Spec.MaxUnavailable != nil:
			n, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, replicas, false)
			require.NoError(t, err)
			require.Positivef(t, n, "PodDisruptionBudget %s: maxUnavailable 0 blocks every drain", pdb.Name)
		default:
			t.Errorf("PodDisruptionBudget %s: neither minAvailable nor maxUnavailable", pdb.Name)
		}
	}
	require.Len(t, covered, 2, "a PodDisruptionBudget for each Deployment")

	// The ServiceMonitor scrapes serve's /metrics with the Secret's key,
	// which serve's API keys accept.
	require.Len(t, o.monitors, 1)
	sm := o.monitors[0]
	require.Equal(t, o.kust.Namespace, sm.Metadata.Namespace)
	require.Contains(t, sm.Spec.NamespaceSelector.MatchNames, o.kust.Namespace)
	svc := o.services["wxmass-serve"]
	require.True(t, selectorMatches(t, &sm.Spec.Selector, svc.Labels), "ServiceMonitor selects Service wxmass-serve")
	for name, other := range o.services {
		if name != svc.Name {
			require.False(t, selectorMatches(t, &sm.Spec.Selector, other.Labels), "ServiceMonitor selects Service %s", name)
		}
	}
	require.Len(t, sm.Spec.Endpoints, 1)
	ep := sm.Spec.Endpoints[0]
	require.Truef(t, slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }),
		"ServiceMonitor port %q is not a named port of Service %s", ep.Port, svc.Name)
	require.Equal(t, "/metrics", ep.Path)
	for _, d := range []string{ep.Interval, ep.ScrapeTimeout} {
		_, err := model.ParseDuration(d)
		require.NoErrorf(t, err, "ServiceMonitor duration %q", d)
	}
	require.NotNil(t, ep.Authorization, "serve's /metrics needs an API key")
	require.Equal(t, "Bearer", ep.Authorization.Type)
	key := secretKey(t, o, ep.Authorization.Credentials.Name, ep.Authorization.Credentials.Key)
	serveKeys := readKeys(t, materializeSecretKey(t, o, serve, "WXMASS_API_KEYS_FILE"))
	require.True(t, serveKeys.Valid(strings.TrimSpace(key)), "serve's API keys accept the ServiceMonitor's key (Secret key %s)", ep.Authorization.Credentials.Key)

	// The Redis URL is one wxmass takes.
	u, err := url.Parse(secretKey(t, o, "wxmass-secrets", "redis-url"))
	require.NoError(t, err)
	require.Contains(t, []string{"redis", "rediss", "redis-sentinel", "redis-cluster"}, u.Scheme, "redis-url scheme")
}

func onlyDeployment(t *testing.T, o k8sObjects, sel *metav1.LabelSelector, what string) *appsv1.Deployment {
	t.Helper()
	var found []*appsv1.Deployment
	for _, d := range o.deployments {
		if selectorMatches(t, sel, d.Spec.Template.Labels) {
			found = append(found, d)
		}
	}
	require.Lenf(t, found, 1, "%s selects the pods of %d Deployments, want 1", what, len(found))
	return found[0]
}

func secretKey(t *testing.T, o k8sObjects, name, key string) string {
	t.Helper()
	s, ok := o.secrets[name]
	require.Truef(t, ok, "no Secret %s", name)
	v, ok := secretData(s)[key]
	require.Truef(t, ok, "Secret %s has no key %s", name, key)
	return v
}

// containerPort finds the container's port a probe or a Service names.
func containerPort(c corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// checkDeployment checks one wxmass Deployment.
func checkDeployment(t *testing.T, o k8sObjects, d *appsv1.Deployment) {
	require.True(t, selectorMatches(t, d.Spec.Selector, d.Spec.Template.Labels), "selector matches the pod template's labels")
	pod := d.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.NotEmpty(t, c.Args, "args: a wxmass subcommand")
	sub, args := c.Args[0], c.Args[1:]
	require.Empty(t, c.Command, "the image's ENTRYPOINT /wxmass runs")
	require.Truef(t, slices.ContainsFunc(o.kust.Images, func(i struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	}) bool {
		return i.Name == c.Image
	}), "image %q is set by kustomization.yaml's images", c.Image)

	// Environment: real wxmass variables, references that resolve.
	env := map[string]string{}
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = secretKey(t, o, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			cm, ok := o.configMaps[e.ValueFrom.ConfigMapKeyRef.Name]
			require.True(t, ok, "env %s: ConfigMap %s", e.Name, e.ValueFrom.ConfigMapKeyRef.Name)
			env[e.Name] = cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
		case e.ValueFrom != nil:
			t.Errorf("env %s: only Secret and ConfigMap references are checked", e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	checkEnvNames(t, "Deployment "+d.Name, sub, names)
	require.NotNil(t, pod.EnableServiceLinks, "enableServiceLinks")
	require.False(t, *pod.EnableServiceLinks, "service links would add WXMASS_SERVE_* variables")

	// Security.
	psc := pod.SecurityContext
	require.NotNil(t, psc)
	require.True(t, psc.RunAsNonRoot != nil && *psc.RunAsNonRoot, "pod runAsNonRoot")
	require.True(t, psc.RunAsUser != nil && *psc.RunAsUser != 0, "pod runAsUser non-zero")
	require.True(t, psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault, "seccomp RuntimeDefault")
	csc := c.SecurityContext
	require.NotNil(t, csc)
	require.True(t, csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation, "allowPrivilegeEscalation false")
	require.True(t, csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem")
	require.True(t, csc.RunAsNonRoot != nil && *csc.RunAsNonRoot, "container runAsNonRoot")
	require.NotNil(t, csc.Capabilities)
	require.Equal(t, []corev1.Capability{"ALL"}, csc.Capabilities.Drop, "drop ALL capabilities")
	require.Empty(t, csc.Capabilities.Add)
	require.False(t, pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken, "wxmass does not talk to the Kubernetes API")

	// Resources: requests and limits of CPU and memory, requests <= limits.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, ok := c.Resources.Requests[r]
		require.Truef(t, ok, "requests.%s", r)
		lim, ok := c.Resources.Limits[r]
		require.Truef(t, ok, "limits.%s", r)
		require.LessOrEqualf(t, req.Cmp(lim), 0, "requests.%s %s > limits.%s %s", r, req.String(), r, lim.String())
	}

	// Graceful stop: the grace period outlasts wxmass's own shutdown.
	grace := shutdownGrace(t, sub, args, env)
	require.NotNil(t, pod.TerminationGracePeriodSeconds)
	require.Greaterf(t, time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second, grace,
		"terminationGracePeriodSeconds vs --shutdown-timeout + 5s")

	// Probes: liveness /healthz, readiness /readyz, on the port the process
	// listens on, which the image exposes.
	var listen string
	switch sub {
	case "serve":
		listen = flagValue(t, sub, args, env, "listen")
	case "worker":
		listen = flagValue(t, sub, args, env, "metrics-listen")
		require.NotEmpty(t, listen, "worker --metrics-listen serves the probes")
	default:
		t.Fatalf("subcommand %s", sub)
	}
	exposed := parseDockerfile(t).exposedPorts()
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		require.NotNilf(t, pr.probe, "%s probe", pr.name)
		require.NotNilf(t, pr.probe.HTTPGet, "%s probe: httpGet", pr.name)
		require.Equalf(t, pr.path, pr.probe.HTTPGet.Path, "%s probe path", pr.name)
		cp, ok := containerPort(c, pr.probe.HTTPGet.Port)
		require.Truef(t, ok, "%s probe port %s is not a container port", pr.name, pr.probe.HTTPGet.Port.String())
		require.Equalf(t, portOf(t, listen), strconv.Itoa(int(cp.ContainerPort)), "%s probe: the container port vs the address wxmass %s listens on (%s)", pr.name, sub, listen)
		require.Truef(t, exposed[strconv.Itoa(int(cp.ContainerPort))], "port %d is EXPOSEd by the image", cp.ContainerPort)
	}

	// Workers are scraped by annotation, on their metrics port.
	if sub == "worker" {
		ann := d.Spec.Template.Annotations
		require.Equal(t, "true", ann["prometheus.io/scrape"])
		require.Equal(t, portOf(t, listen), ann["prometheus.io/port"])
		require.Equal(t, "/metrics", ann["prometheus.io/path"])
	}

	// Volumes: the ConfigMap and Secret exist, with the keys named, and
	// are mounted whole (subPath mounts never see updates, and wxmass
	// re-reads these files to pick up rotated secrets).
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			cm, ok := o.configMaps[v.ConfigMap.Name]
			require.Truef(t, ok, "volume %s: ConfigMap %s", v.Name, v.ConfigMap.Name)
			for _, it := range v.ConfigMap.Items {
				require.Containsf(t, cm.Data, it.Key, "volume %s: ConfigMap %s key", v.Name, cm.Name)
			}
		case v.Secret != nil:
			s, ok := o.secrets[v.Secret.SecretName]
			require.Truef(t, ok, "volume %s: Secret %s", v.Name, v.Secret.SecretName)
			for _, it := range v.Secret.Items {
				require.Containsf(t, secretData(s), it.Key, "volume %s: Secret %s key", v.Name, s.Name)
			}
		}
	}
	for _, m := range c.VolumeMounts {
		v, ok := vols[m.Name]
		require.Truef(t, ok, "volumeMount %s: no such volume", m.Name)
		if v.ConfigMap != nil || v.Secret != nil {
			require.Emptyf(t, m.SubPath, "volumeMount %s: subPath mounts do not receive updates", m.Name)
			require.Truef(t, m.ReadOnly, "volumeMount %s read-only", m.Name)
		}
	}

	// The accounts file loads with wxmass's loader from what this pod
	// mounts: every secret file it names is a key of the mounted Secret.
	accounts := materializeFile(t, o, d, env["WXMASS_ACCOUNTS_FILE"])
	specs, err := account.LoadFile(accounts, account.Defaults{Rate: 100}, func(string) string { return "" })
	require.NoError(t, err, "the accounts ConfigMap, with wxmass's loader, in %s's pod", d.Name)
	require.NotEmpty(t, specs)
	if sub == "serve" {
		readKeys(t, materializeSecretKey(t, o, d, "WXMASS_API_KEYS_FILE"))
	}
}

// materializeSecretKey writes the pod's mounted volumes to a directory
// and returns the host path of the file the variable env names.
func materializeSecretKey(t *testing.T, o k8sObjects, d *appsv1.Deployment, env string) string {
	t.Helper()
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == env {
			return materializeFile(t, o, d, e.Value)
		}
	}
	t.Fatalf("Deployment %s sets no %s", d.Name, env)
	return ""
}

// materializeFile writes every ConfigMap and Secret volume of d's pod into
// a temporary directory, as the kubelet would at the mount paths, and
// returns the host path of the file at container path p, its container
// paths replaced by host ones.
func materializeFile(t *testing.T, o k8sObjects, d *appsv1.Deployment, p string) string {
	t.Helper()
	root := t.TempDir()
	pod := d.Spec.Template.Spec
	var pairs []string
	var mountPaths []string
	for _, m := range pod.Containers[0].VolumeMounts {
		var files map[string]string
		var items []corev1.KeyToPath
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				files, items = o.configMaps[v.ConfigMap.Name].Data, v.ConfigMap.Items
			case v.Secret != nil:
				files, items = secretData(o.secrets[v.Secret.SecretName]), v.Secret.Items
			}
		}
		if files == nil {
			continue
		}
		if len(items) > 0 {
			picked := map[string]string{}
			for _, it := range items {
				picked[it.Path] = files[it.Key]
			}
			files = picked
		}
		dir := filepath.Join(root, filepath.FromSlash(m.MountPath))
		for name, content := range files {
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
		}
		mountPaths = append(mountPaths, m.MountPath)
	}
	slices.SortFunc(mountPaths, func(a, b string) int { return len(b) - len(a) })
	for _, mp := range mountPaths {
		pairs = append(pairs, mp+"/", filepath.Join(root, filepath.FromSlash(mp))+"/")
	}
	host := strings.NewReplacer(pairs...).Replace(p)
	require.NotEqualf(t, p, host, "Deployment %s: %s is not in a ConfigMap or Secret volume", d.Name, p)
	b, err := os.ReadFile(host)
	require.NoErrorf(t, err, "Deployment %s: %s", d.Name, p)
	require.NoError(t, os.WriteFile(host, []byte(strings.NewReplacer(pairs...).Replace(string(b))), 0o600))
	return host
}
