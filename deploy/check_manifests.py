#!/usr/bin/env python3
"""Settings in the rendered manifests that must agree with each other and with `vani serve`.

Usage: check_manifests.py DIR   (DIR holds one rendered YAML stream per kustomization, as
deploy/check-manifests.sh writes them). Prints one line per problem; exits 1 if there is any.
The rules are those of docs/SCALING.md.
"""

import pathlib
import re
import sys

import yaml

# Seconds a pod needs after SIGTERM beyond the preStop pause: the upload (--timeout) and the wait
# plus transcription (--timeout again), docs/SERVICE.md "Limits and timeouts".
TIMEOUT_BUDGETS = 2
# The model must be able to load within the startup budget: 2.4 GB from a slow volume.
MIN_STARTUP_SECONDS = 300
HPA_METRICS = {"vani_queued_requests", "vani_inflight_requests"}

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def cpu(value):
    value = str(value)
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


def options(args):
    """`--name=value` and `--name value` pairs of a vani command line."""
    result, i = {}, 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            if "=" in arg:
                key, value = arg[2:].split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                key, value = arg[2:], args[i + 1]
                i += 1
            else:
                key, value = arg[2:], True
            result[key] = value
        i += 1
    return result


def check_container(where, c, pod_spec, kind):
    args = c.get("args") or []
    opts = options(args)
    if kind == "Deployment" and args[:1] != ["serve"]:
        problem(where, f"container args should start with 'serve', got {args[:1]}")
    if opts.get("host") != "0.0.0.0":
        problem(where, "--host=0.0.0.0 is needed: the default (loopback) is unreachable from the kubelet and the Service")
    port = int(opts.get("port", 5000))
    declared = [p["containerPort"] for p in c.get("ports", [])]
    if port not in declared:
        problem(where, f"--port {port} is not a declared containerPort {declared}")
    if "preload" not in opts:
        problem(where, "--preload is needed: without it /health is 200 before the model is loaded and the pod gets traffic too early")

    # Probes: startup and readiness on /health (503 while loading or failed), liveness on /ping.
    for probe, path in (("startupProbe", "/health"), ("readinessProbe", "/health"), ("livenessProbe", "/ping")):
        p = c.get(probe)
        if not p:
            problem(where, f"no {probe}")
            continue
        got = p.get("httpGet", {}).get("path")
        if got != path:
            problem(where, f"{probe} should GET {path}, not {got}")
    sp = c.get("startupProbe") or {}
    budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
    if budget < MIN_STARTUP_SECONDS:
        problem(where, f"startup budget {budget} s is under {MIN_STARTUP_SECONDS} s (a 2.4 GB model from a volume)")

    # CPU: the forward passes need concurrency × threads cores, and should get no fewer.
    concurrency, threads = opts.get("concurrency"), opts.get("threads")
    if concurrency is None or threads is None:
        problem(where, "set --concurrency and --threads: the defaults follow the node's cores, not the pod's CPU limit")
    else:
        cores = int(concurrency) * int(threads)
        res = c.get("resources", {})
        limit = res.get("limits", {}).get("cpu")
        request = res.get("requests", {}).get("cpu")
        if limit is None or request is None:
            problem(where, "CPU request and limit must both be set")
        elif "nvidia.com/gpu" not in res.get("limits", {}):
            if cpu(request) != cores or cpu(limit) != cores:
                problem(where, f"CPU request {request} / limit {limit} should equal --concurrency × --threads = {cores}")
        elif cpu(limit) < int(threads):
            problem(where, f"CPU limit {limit} is under --threads {threads}")
        if res.get("limits", {}).get("memory") is None:
            problem(where, "no memory limit")

    # Shutdown: preStop pause, then in-flight requests finish within the grace period.
    if kind == "Deployment":
        timeout = float(opts.get("timeout", 120))
        pre = (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
        pause = float(pre[-1]) if pre[:1] == ["sleep"] else 0
        if pause <= 0:
            problem(where, "no preStop pause: the endpoint is removed from load balancers only after SIGTERM")
        grace = pod_spec.get("terminationGracePeriodSeconds", 30)
        need = pause + TIMEOUT_BUDGETS * timeout
        if grace <= need:
            problem(where, f"terminationGracePeriodSeconds {grace} must exceed preStop {pause:g} s + {TIMEOUT_BUDGETS} × --timeout {timeout:g} s = {need:g} s")

    sc = c.get("securityContext") or {}
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(where, "allowPrivilegeEscalation should be false")


def main(directory):
    rendered = sorted(pathlib.Path(directory).glob("*.yaml"))
    adapter_metrics = set()
    overlays = 0
    for f in rendered:
        docs = [d for d in yaml.safe_load_all(f.read_text()) if d]
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d["kind"], []).append(d)
        for cm in by_kind.get("ConfigMap", []):
            config = yaml.safe_load(cm.get("data", {}).get("config.yaml", "") or "{}") or {}
            for rule in config.get("rules", []):
                adapter_metrics.add(rule.get("name", {}).get("as"))
                if not re.search(r"namespace.*pod|pod.*namespace", str(rule.get("resources"))):
                    problem(f.stem, f"adapter rule {rule.get('seriesQuery')} does not map namespace and pod")
        for isvc in by_kind.get("InferenceService", []):
            for c in isvc["spec"]["predictor"]["containers"]:
                check_container(f"{f.stem}/InferenceService/{c['name']}", c, {}, "InferenceService")
        for dep in by_kind.get("Deployment", []):
            overlays += 1
            name = dep["metadata"]["name"]
            spec = dep["spec"]["template"]["spec"]
            labels = dep["spec"]["template"]["metadata"].get("labels", {})
            selector = dep["spec"]["selector"]["matchLabels"]
            if any(labels.get(k) != v for k, v in selector.items()):
                problem(f"{f.stem}/Deployment/{name}", "selector does not match the pod labels")
            if "replicas" in dep["spec"] and by_kind.get("HorizontalPodAutoscaler"):
                problem(f"{f.stem}/Deployment/{name}", "replicas is set, and the HPA owns it (each apply would reset it)")
            sc = spec.get("securityContext", {})
            if not sc.get("runAsNonRoot"):
                problem(f"{f.stem}/Deployment/{name}", "runAsNonRoot is not set")
            for c in spec["containers"]:
                check_container(f"{f.stem}/Deployment/{name}/{c['name']}", c, spec, "Deployment")
            mounts = {m["name"] for c in spec["containers"] + spec.get("initContainers", []) for m in c.get("volumeMounts", [])}
            volumes = {v["name"] for v in spec.get("volumes", [])}
            if mounts - volumes:
                problem(f"{f.stem}/Deployment/{name}", f"mounts without a volume: {sorted(mounts - volumes)}")
            claims = {v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes", []) if "persistentVolumeClaim" in v}
            have = {p["metadata"]["name"] for p in by_kind.get("PersistentVolumeClaim", [])}
            if claims - have:
                problem(f"{f.stem}/Deployment/{name}", f"claims without a PersistentVolumeClaim: {sorted(claims - have)}")
            for kind in ("Service", "PodDisruptionBudget"):
                objs = by_kind.get(kind, [])
                if not objs:
                    problem(f"{f.stem}", f"no {kind} for Deployment {name}")
                for o in objs:
                    sel = o["spec"]["selector"]
                    sel = sel.get("matchLabels", sel) if kind == "PodDisruptionBudget" else sel
                    if not sel or any(labels.get(k) != v for k, v in sel.items()):
                        problem(f"{f.stem}/{kind}/{o['metadata']['name']}", "selector does not match the pods")
            hpas = by_kind.get("HorizontalPodAutoscaler", [])
            if not hpas:
                problem(f.stem, f"no HorizontalPodAutoscaler for Deployment {name}")
            for h in hpas:
                where = f"{f.stem}/HorizontalPodAutoscaler/{h['metadata']['name']}"
                ref = h["spec"]["scaleTargetRef"]
                if (ref["kind"], ref["name"]) != ("Deployment", name):
                    problem(where, f"scales {ref['kind']}/{ref['name']}, not Deployment/{name}")
                pods_metrics = {m["pods"]["metric"]["name"] for m in h["spec"]["metrics"] if m["type"] == "Pods"}
                if pods_metrics != HPA_METRICS:
                    problem(where, f"Pods metrics {sorted(pods_metrics)} should be {sorted(HPA_METRICS)}")
                if not any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in h["spec"]["metrics"]):
                    problem(where, "no CPU fallback metric")
                if h["spec"].get("minReplicas", 1) < 2:
                    problem(where, "minReplicas under 2: one pod's restart or drain would stop the service")
                for c in spec["containers"]:
                    opts = options(c.get("args") or [])
                    workers = int(opts.get("concurrency", 0))
                    for m in h["spec"]["metrics"]:
                        if m["type"] == "Pods" and m["pods"]["metric"]["name"] == "vani_inflight_requests":
                            target = cpu(m["pods"]["target"]["averageValue"])
                            if workers and not 0 < target <= workers:
                                problem(where, f"vani_inflight_requests target {target:g} is not within 1..--concurrency {workers}")
    if overlays < 3:
        problem(directory, f"expected Deployments in at least 3 renderings, found {overlays}")
    if not HPA_METRICS <= adapter_metrics:
        problem("prometheus-adapter", f"the adapter serves {sorted(m for m in adapter_metrics if m)}, not all of {sorted(HPA_METRICS)}")
    for p in problems:
        print(p)
    print(f"check_manifests: {len(rendered)} renderings, {overlays} Deployments, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
