import { readFileSync, readdirSync } from "node:fs";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import ts from "typescript";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { configSchema, loadConfig } from "../../runtime/config.js";

/**
 * The deployment files are checked offline: each Kubernetes manifest against the API's JSON
 * Schema (kubernetes-models), then the fields that decide whether a rollout loses calls; the
 * Dockerfile by its instructions; nginx.conf by what must agree with callscript's own config.
 * (nginx runs deploy/nginx.conf for real in test/deploy/cluster.test.ts.)
 */
const deploy = path.resolve(import.meta.dirname, "../../deploy");
const k8s = path.join(deploy, "k8s");

const models: Record<string, new (value: never) => { validate(): void }> = {
  ConfigMap: ConfigMap as never,
  Secret: Secret as never,
  Deployment: Deployment as never,
  Service: Service as never,
  PodDisruptionBudget: PodDisruptionBudget as never,
  HorizontalPodAutoscaler: HorizontalPodAutoscaler as never,
};

/** The model's TypeScript interface, for the check of misspelt fields that JSON Schema lets through. */
const typings: Record<string, { module: string; type: string }> = {
  ConfigMap: { module: "kubernetes-models/v1/ConfigMap", type: "IConfigMap" },
  Secret: { module: "kubernetes-models/v1/Secret", type: "ISecret" },
  Deployment: { module: "kubernetes-models/apps/v1/Deployment", type: "IDeployment" },
  Service: { module: "kubernetes-models/v1/Service", type: "IService" },
  PodDisruptionBudget: { module: "kubernetes-models/policy/v1/PodDisruptionBudget", type: "IPodDisruptionBudget" },
  HorizontalPodAutoscaler: { module: "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler", type: "IHorizontalPodAutoscaler" },
};

/**
 * TypeScript's excess property check over every manifest as an object literal of its model's
 * type: a misspelt field (`readinesProbe`) is an error here, where the API's JSON Schema, which
 * allows unknown fields, says nothing and kubectl would only warn.
 */
function typeErrors(all: Manifest[]): string[] {
  const dir = mkdtempSync(path.join(import.meta.dirname, ".manifests-"));
  const file = path.join(dir, "manifests.ts");
  const lines = all.map((manifest, i) => {
    const { module, type } = typings[manifest.kind]!;
    return `import type { ${type} as T${i} } from "${module}";\nexport const m${i}: T${i} = ${JSON.stringify(manifest)};`;
  });
  writeFileSync(file, lines.join("\n"));
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      skipLibCheck: true,
    });
    return ts.getPreEmitDiagnostics(program).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Manifest = { kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string>; stringData?: Record<string, string> };

function manifests(): Manifest[] {
  const files = readdirSync(k8s).filter((file) => file.endsWith(".yaml") && file !== "kustomization.yaml");
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(k8s, file), "utf8")).map((document) => {
      expect(document.errors, file).toEqual([]);
      return document.toJS() as Manifest;
    }),
  );
}

function one(kind: string): Manifest {
  const found = manifests().filter((manifest) => manifest.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
}

describe("deploy/k8s", () => {
  it("every manifest is valid against the Kubernetes API schema, and kustomization lists them all", () => {
    const all = manifests();
    for (const manifest of all) {
      const Model = models[manifest.kind];
      expect(Model, `a model for ${manifest.kind}`).toBeDefined();
      expect(() => new Model!(manifest as never).validate(), `${manifest.kind} ${manifest.metadata.name}`).not.toThrow();
    }
    expect(typeErrors(all)).toEqual([]);
    const kustomization = parseYaml(readFileSync(path.join(k8s, "kustomization.yaml"), "utf8")) as { resources: string[] };
    const files = readdirSync(k8s).filter((file) => file.endsWith(".yaml") && file !== "kustomization.yaml");
    expect([...kustomization.resources].sort()).toEqual(files.sort());
  });

  it("a misspelt field is found", () => {
    const deployment = structuredClone(one("Deployment"));
    deployment.spec.template.spec.containers[0].readinesProbe = deployment.spec.template.spec.containers[0].readinessProbe;
    expect(typeErrors([deployment]).join("\n")).toMatch(/readinesProbe/);
  });

  it("a Deployment that never routes to an unready pod and drains before it stops", () => {
    const deployment = one("Deployment");
    const pod = deployment.spec.template.spec;
    const server = pod.containers.find((container: { name: string }) => container.name === "callscript");
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    expect(server.readinessProbe.httpGet.path).toBe("/readyz");
    expect(server.livenessProbe.httpGet.path).toBe("/healthz");
    expect(server.lifecycle.preStop.exec.command[0]).toBe("sleep");
    // The pause, the longest hook deadline (9 s) and a grace must fit before the kubelet's SIGKILL.
    const pause = Number(server.lifecycle.preStop.exec.command[1]);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(pause + 9 + 5);
    expect(server.resources.requests.cpu).toBeDefined();
    expect(server.resources.limits.memory).toBeDefined();
  });

  it("runs as non-root on a read-only root, with no privileges, and the token from a Secret", () => {
    const deployment = one("Deployment");
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    for (const container of [...pod.initContainers, ...pod.containers]) {
      expect(container.securityContext.readOnlyRootFilesystem, container.name).toBe(true);
      expect(container.securityContext.allowPrivilegeEscalation, container.name).toBe(false);
      expect(container.securityContext.capabilities.drop, container.name).toEqual(["ALL"]);
      expect(container.securityContext.runAsUser, container.name).toBeGreaterThan(0);
    }
    const server = pod.containers.find((container: { name: string }) => container.name === "callscript");
    const secret = one("Secret");
    expect(server.envFrom).toContainEqual({ secretRef: { name: secret.metadata.name } });
    expect(Object.keys(secret.stringData ?? {})).toContain("CALLSCRIPT_TOKEN");
  });

  it("git-sync checks the scripts out into the volume the server reads its scriptsDir from", () => {
    const deployment = one("Deployment");
    const pod = deployment.spec.template.spec;
    const server = pod.containers.find((container: { name: string }) => container.name === "callscript");
    const sidecar = pod.containers.find((container: { name: string }) => container.name === "git-sync");
    const init = pod.initContainers.find((container: { name: string }) => container.name === "git-sync-init");
    expect(sidecar.image).toMatch(/^registry\.k8s\.io\/git-sync\/git-sync:v4\./);
    expect(init.args).toContain("--one-time");
    const mountOf = (container: { volumeMounts: { name: string; mountPath: string }[] }, volume: string) =>
      container.volumeMounts.find((mount) => mount.name === volume)?.mountPath;
    const root = sidecar.args.find((arg: string) => arg.startsWith("--root="))!.slice("--root=".length);
    const link = sidecar.args.find((arg: string) => arg.startsWith("--link="))!.slice("--link=".length);
    expect(mountOf(sidecar, "git")).toBe(root);
    expect(mountOf(init, "git")).toBe(root);
    expect(mountOf(server, "git")).toBe(root);

    // The ConfigMap's config is a valid callscript config whose scripts live under the link.
    const configMap = one("ConfigMap");
    const configFile = Object.keys(configMap.data!)[0]!;
    expect(server.args).toEqual(["serve", "--config", `${mountOf(server, "config")}/${configFile}`]);
    const dir = mkdtempSync(path.join(tmpdir(), "callscript-k8s-"));
    writeFileSync(path.join(dir, configFile), configMap.data![configFile]!);
    const secret = one("Secret").stringData as Record<string, string>;
    const config = loadConfig({ file: path.join(dir, configFile), env: { ...secret, CALLSCRIPT_TOKEN: "a-token-of-sixteen-chars" } });
    expect(config.scriptsDir.startsWith(`${root}/${link}/`)).toBe(true);
    expect(config.host).toBe("0.0.0.0");
    // Two or more replicas share ctx.kv: Redis, not an SQLite file per pod.
    expect(config.kv.url).toMatch(/^rediss?:\/\//);
  });

  it("the Service, the PodDisruptionBudget and the autoscaler select the Deployment's pods", () => {
    const deployment = one("Deployment");
    const labels = deployment.spec.template.metadata.labels;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([key, value]) => labels[key] === value);
    expect(selects(one("Service").spec.selector)).toBe(true);
    expect(selects(one("PodDisruptionBudget").spec.selector.matchLabels)).toBe(true);
    const service = one("Service");
    const containerPort = deployment.spec.template.spec.containers[0].ports[0];
    expect(service.spec.ports[0].targetPort).toBe(containerPort.name);
    const autoscaler = one("HorizontalPodAutoscaler");
    expect(autoscaler.spec.scaleTargetRef).toMatchObject({ kind: "Deployment", name: deployment.metadata.name });
    expect(autoscaler.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(one("PodDisruptionBudget").spec.minAvailable).toBeLessThan(autoscaler.spec.minReplicas);
  });
});

describe("deploy/Dockerfile", () => {
  const dockerfile = DockerfileParser.parse(readFileSync(path.join(deploy, "Dockerfile"), "utf8"));
  const stages = dockerfile.getFROMs();
  const final = stages.at(-1)!;
  const finalInstructions = dockerfile.getInstructions().filter((instruction) => instruction.getRange().start.line > final.getRange().start.line);

  it("builds in one stage and runs Node 24 slim, without build tools, in the last", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages[0]!.getImageName()).toBe("node");
    expect(stages[0]!.getImageTag()).toMatch(/^24-/);
    expect(final.getImageName()).toBe("node");
    expect(final.getImageTag()).toMatch(/^24-.*slim$/);
    const runs = finalInstructions.filter((instruction) => instruction.getKeyword() === "RUN").map((run) => run.getTextContent());
    for (const run of runs) expect(run).not.toMatch(/apt-get|apk add|npm (ci|install)|build-essential|python|g\+\+/);
    // The build stage's script is the one .ci/image-smoke runs without Docker.
    const buildRuns = dockerfile
      .getInstructions()
      .filter((instruction) => instruction.getKeyword() === "RUN" && instruction.getRange().start.line < final.getRange().start.line);
    expect(buildRuns.map((run) => run.getTextContent())).toContainEqual(expect.stringContaining("deploy/image-build.sh"));
  });

  it("runs as a user of its own, with isolated-vm's flag, serving the mounted config", () => {
    const user = finalInstructions.filter((instruction) => instruction.getKeyword() === "USER").at(-1);
    expect(user?.getArguments()[0]?.getValue()).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    const entrypoint = finalInstructions.find((instruction) => instruction.getKeyword() === "ENTRYPOINT")!;
    expect(entrypoint.getArgumentsContent()).toContain("--no-node-snapshot");
    const cmd = finalInstructions.find((instruction) => instruction.getKeyword() === "CMD")!;
    expect(cmd.getArgumentsContent()).toContain("serve");
  });
});

describe("deploy/nginx.conf", () => {
  const conf = readFileSync(path.join(deploy, "nginx.conf"), "utf8");

  it("refuses the same bodies as an instance: client_max_body_size equals the default bodyLimitBytes", () => {
    const size = /client_max_body_size\s+(\d+)([km]?);/i.exec(conf)!;
    const bytes = Number(size[1]) * ({ "": 1, k: 1024, m: 1024 * 1024 } as Record<string, number>)[size[2]!.toLowerCase()]!;
    expect(bytes).toBe(configSchema.parse({}).bodyLimitBytes);
  });

  it("retries a hook request on another instance only when it never reached one, unless the hook is listed as pure", () => {
    const hooks = /location \/hooks\/ \{([^}]*)\}/.exec(conf)![1]!;
    expect(hooks).toMatch(/proxy_next_upstream error timeout;/);
    expect(hooks).not.toMatch(/non_idempotent/);
    const pure = /location ~ \^\/hooks\/\(([^)]*)\)\$ \{([^}]*)\}/.exec(conf)!;
    expect(pure[2]).toMatch(/non_idempotent/);
    expect(conf).toMatch(/keepalive \d+;/);
    // Upstream keep-alive shorter than the instances' (fastify closes idle connections after 72 s).
    expect(Number(/keepalive_timeout (\d+)s;/.exec(conf)![1])).toBeLessThan(72);
  });
});
