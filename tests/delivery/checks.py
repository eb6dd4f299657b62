"""Static checks of the delivery files (terraform/, buildspec.yml, Dockerfile, README).

Every check is a function that takes already-parsed input (a `Module` built from HCL
text, a buildspec dict, README text, ...) and returns a list of human-readable
violations; an empty list means the rule holds. The tests run each check once on the
real tree (expecting no violation) and once on a deliberately broken input (expecting
the violation), so a check that silently stopped working would be noticed.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import hcl2
from hcl2.utils import SerializationOptions

REPO_ROOT = Path(__file__).resolve().parents[2]

_HCL_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=True)

# Actions that AWS authorises only with Resource "*" (no resource-level permission).
# A policy-document statement may use resources = ["*"] only if every action it allows
# is listed here, and the statement must carry a comment saying why.
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {
        "ecr:GetAuthorizationToken",  # registry-wide login token
        "ecs:DescribeTaskDefinition",  # no task-definition resource type in IAM
        "ecs:RegisterTaskDefinition",  # no task-definition resource type in IAM
        "ecs:ListTasks",  # only narrowed by the ecs:cluster condition key
        "elasticloadbalancing:DescribeTargetGroups",  # CodeDeploy blue/green: Describe* take no ARN
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeRules",
    }
)

# Resource types whose `policy`-like attribute must come from an aws_iam_policy_document,
# so that every policy in the tree goes through the checks below.
POLICY_ATTRIBUTES = {
    "aws_iam_role": "assume_role_policy",
    "aws_iam_role_policy": "policy",
    "aws_iam_policy": "policy",
    "aws_s3_bucket_policy": "policy",
    "aws_kms_key": "policy",
    "aws_sns_topic_policy": "policy",
    "aws_ecr_repository_policy": "policy",
}

_META_KEYS = ("__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__")


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def parse_hcl(text: str) -> dict:
    """Parse HCL text into python-hcl2's dict form (quotes stripped, comments kept).

    Cached by text (the negative tests re-parse the same files many times); callers
    must treat the result as read-only."""
    return hcl2.loads(text, serialization_options=_HCL_OPTIONS)


@dataclass
class Module:
    """The blocks of one Terraform module (one directory), merged across files."""

    resources: dict[str, dict[str, dict]] = field(default_factory=dict)
    data: dict[str, dict[str, dict]] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)
    raw: dict[str, dict] = field(default_factory=dict)  # file name -> parsed dict

    @classmethod
    def from_texts(cls, texts: dict[str, str]) -> "Module":
        module = cls()
        for name, text in texts.items():
            module.add(name, parse_hcl(text))
        return module

    @classmethod
    def from_dir(cls, directory: Path) -> "Module":
        return cls.from_texts({p.name: p.read_text() for p in sorted(directory.glob("*.tf"))})

    def add(self, name: str, parsed: dict) -> None:
        self.raw[name] = parsed
        for block in parsed.get("resource", []):
            for rtype, named in _items(block):
                for rname, body in _items(named):
                    self.resources.setdefault(rtype, {})[rname] = body
        for block in parsed.get("data", []):
            for dtype, named in _items(block):
                for dname, body in _items(named):
                    self.data.setdefault(dtype, {})[dname] = body
        for block in parsed.get("variable", []):
            for vname, body in _items(block):
                self.variables[vname] = body
        for block in parsed.get("output", []):
            for oname, body in _items(block):
                self.outputs[oname] = body
        for block in parsed.get("locals", []):
            for lname, value in _items(block):
                self.locals[lname] = value
        for block in parsed.get("module", []):
            for mname, body in _items(block):
                self.modules[mname] = body

    def all_resources(self) -> Iterator[tuple[str, str, dict]]:
        for rtype, named in self.resources.items():
            for rname, body in named.items():
                yield rtype, rname, body

    def policy_documents(self) -> dict[str, dict]:
        return self.data.get("aws_iam_policy_document", {})


def _items(d: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(d, dict):
        for k, v in d.items():
            if k not in _META_KEYS:
                yield k, v


def _blocks(body: dict, name: str) -> list[dict]:
    """Nested blocks of `body` called `name` (python-hcl2 gives lists of dicts)."""
    value = body.get(name, [])
    if isinstance(value, dict):
        return [value]
    return [b for b in value if isinstance(b, dict)]


def _dynamic_contents(body: dict, name: str) -> list[dict]:
    """The `content` blocks of `dynamic "<name>"` blocks in `body`."""
    out = []
    for dyn in _blocks(body, "dynamic"):
        for dname, spec in _items(dyn):
            if dname == name:
                for s in spec if isinstance(spec, list) else [spec]:
                    out.extend(_blocks(s, "content"))
    return out


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in _META_KEYS:
                continue
            yield from _walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v)


def expression_segments(text: str) -> list[str]:
    """The `${ ... }` segments of a serialized value (balanced braces)."""
    segments = []
    i = 0
    while True:
        start = text.find("${", i)
        if start < 0:
            return segments
        depth, j = 0, start + 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        segments.append(text[start + 2 : j])
        i = j + 1


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def _unwrap(value: Any) -> Any:
    if _is_expression(value) and len(expression_segments(value)) == 1:
        return value[2:-1].strip()
    return value


def resolve(module: Module, value: Any) -> Any:
    """Resolve a value that is exactly `${var.x}` (its default) or `${local.x}`; else as is."""
    for _ in range(10):
        inner = _unwrap(value)
        if not isinstance(inner, str) or inner == value:
            return value
        m = re.fullmatch(r"(var|local)\.([A-Za-z_][\w-]*)", inner)
        if not m:
            m2 = re.fullmatch(r"tostring\((var|local)\.([A-Za-z_][\w-]*)\)", inner)
            if not m2:
                return value
            resolved = resolve(module, "${%s.%s}" % (m2.group(1), m2.group(2)))
            return None if resolved is None else str(resolved)
        kind, name = m.groups()
        if kind == "var":
            value = module.variables.get(name, {}).get("default")
        else:
            value = module.locals.get(name)
    return value


def parse_hcl_expression(expr: str) -> Any:
    """Parse an HCL expression (e.g. the argument of jsonencode) into python values."""
    return parse_hcl(f"value = {expr}\n")["value"]


def jsonencode_argument(value: Any) -> Any:
    """`${jsonencode(X)}` -> X parsed; None when the value is not a jsonencode call."""
    inner = _unwrap(value)
    if not isinstance(inner, str):
        return None
    m = re.fullmatch(r"jsonencode\((.*)\)", inner, flags=re.S)
    if not m:
        return None
    return parse_hcl_expression(m.group(1))


# --------------------------------------------------------------------------------------
# Terraform checks
# --------------------------------------------------------------------------------------

_REF_PATTERNS = [
    ("data", re.compile(r"(?<![\w.\-])data\.([a-z][a-z0-9]*_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")),
    ("var", re.compile(r"(?<![\w.\-])var\.([A-Za-z_][\w-]*)")),
    ("local", re.compile(r"(?<![\w.\-])local\.([A-Za-z_][\w-]*)")),
    ("module", re.compile(r"(?<![\w.\-])module\.([A-Za-z_][\w-]*)")),
    ("resource", re.compile(r"(?<![\w.\-])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")),
]


def references(module: Module) -> set[tuple[str, ...]]:
    """Every reference made from an expression anywhere in the module."""
    refs: set[tuple[str, ...]] = set()
    for parsed in module.raw.values():
        for text in _walk_strings(parsed):
            for segment in expression_segments(text):
                for kind, pattern in _REF_PATTERNS:
                    for m in pattern.finditer(segment):
                        refs.add((kind, *m.groups()))
    return refs


def check_references(module: Module) -> list[str]:
    """Every referenced resource, data source, variable, local and module is declared."""
    problems = []
    for ref in sorted(references(module)):
        kind = ref[0]
        if kind == "var" and ref[1] not in module.variables:
            problems.append(f"undeclared variable var.{ref[1]}")
        elif kind == "local" and ref[1] not in module.locals:
            problems.append(f"undeclared local local.{ref[1]}")
        elif kind == "module" and ref[1] not in module.modules:
            problems.append(f"undeclared module module.{ref[1]}")
        elif kind == "data" and ref[2] not in module.data.get(ref[1], {}):
            problems.append(f"undeclared data source data.{ref[1]}.{ref[2]}")
        elif kind == "resource" and ref[2] not in module.resources.get(ref[1], {}):
            problems.append(f"undeclared resource {ref[1]}.{ref[2]}")
    return problems


def check_variables_typed_and_described(module: Module) -> list[str]:
    problems = []
    for name, body in sorted(module.variables.items()):
        if not body.get("type"):
            problems.append(f"variable {name} has no type")
        if not str(body.get("description") or "").strip():
            problems.append(f"variable {name} has no description")
    return problems


def check_outputs_described(module: Module) -> list[str]:
    return [
        f"output {name} has no description"
        for name, body in sorted(module.outputs.items())
        if not str(body.get("description") or "").strip()
    ]


def _statements(doc: dict) -> list[dict]:
    return _blocks(doc, "statement")


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _comments(block: dict) -> list[str]:
    out = []
    for key in ("__comments__", "__inline_comments__"):
        for c in block.get(key, []) or []:
            out.append(c.get("value", "") if isinstance(c, dict) else str(c))
    return [c for c in out if c.strip()]


def check_iam_actions(module: Module) -> list[str]:
    """No policy statement names the action `*` or `service:*` (actions or not_actions)."""
    problems = []
    for doc_name, doc in sorted(module.policy_documents().items()):
        for i, st in enumerate(_statements(doc)):
            for key in ("actions", "not_actions"):
                for action in _as_list(st.get(key)):
                    if action == "*" or re.fullmatch(r"[A-Za-z0-9-]+:\*", str(action)):
                        problems.append(
                            f"data.aws_iam_policy_document.{doc_name} statement {i}: wildcard action {action!r}"
                        )
            if st.get("not_actions"):
                problems.append(f"data.aws_iam_policy_document.{doc_name} statement {i}: not_actions is not allowed")
    return problems


def check_policies_use_documents(module: Module) -> list[str]:
    """Every policy attribute is `data.aws_iam_policy_document.X.json` (so it is checked)."""
    problems = []
    for rtype, attr in POLICY_ATTRIBUTES.items():
        for rname, body in module.resources.get(rtype, {}).items():
            if attr not in body:
                continue
            inner = _unwrap(body[attr])
            if not (isinstance(inner, str) and re.fullmatch(r"data\.aws_iam_policy_document\.[\w-]+\.json", inner)):
                problems.append(f"{rtype}.{rname}.{attr} is not an aws_iam_policy_document's json")
    for rname in module.resources.get("aws_iam_role_policy_attachment", {}):
        problems.append(f"aws_iam_role_policy_attachment.{rname}: attach managed policies is not allowed (write a document)")
    return problems


def key_policy_documents(module: Module) -> set[str]:
    """Names of the policy documents used as KMS key policies (where "*" means the key)."""
    names = set()
    for body in module.resources.get("aws_kms_key", {}).values():
        m = re.fullmatch(r"data\.aws_iam_policy_document\.([\w-]+)\.json", str(_unwrap(body.get("policy", ""))))
        if m:
            names.add(m.group(1))
    return names


def check_wildcard_resources(module: Module, allowed: Iterable[str] = WILDCARD_RESOURCE_ACTIONS) -> list[str]:
    """An Allow statement with resources "*" only allows actions that admit nothing
    narrower, and carries a comment why. In a KMS key policy "*" is the key itself, so
    only the comment is required there."""
    allowed = frozenset(allowed)
    key_docs = key_policy_documents(module)
    problems = []
    for doc_name, doc in sorted(module.policy_documents().items()):
        for i, st in enumerate(_statements(doc)):
            where = f"data.aws_iam_policy_document.{doc_name} statement {st.get('sid', i)}"
            resources = _as_list(st.get("resources"))
            if st.get("not_resources"):
                problems.append(f"{where}: not_resources is not allowed")
            if "*" not in resources:
                continue
            if str(st.get("effect", "Allow")) != "Allow":
                continue
            if not _comments(st):
                problems.append(f"{where}: resources = [\"*\"] without a comment saying why")
            if doc_name in key_docs:
                continue
            for action in _as_list(st.get("actions")):
                if action not in allowed:
                    problems.append(f"{where}: {action} on resource \"*\" (not on the allow-list)")
    return problems


def check_passrole(module: Module) -> list[str]:
    """iam:PassRole only on explicit role ARNs and with an iam:PassedToService condition."""
    problems = []
    for doc_name, doc in sorted(module.policy_documents().items()):
        for i, st in enumerate(_statements(doc)):
            actions = _as_list(st.get("actions"))
            if not any(str(a).lower().startswith("iam:pass") for a in actions):
                continue
            where = f"data.aws_iam_policy_document.{doc_name} statement {st.get('sid', i)}"
            resources = _as_list(st.get("resources"))
            if not resources or not all(_names_roles(module, r) for r in resources):
                problems.append(f"{where}: iam:PassRole must name role ARNs (aws_iam_role.X.arn, or a local *_role_arns of role ARNs)")
            if not any(c.get("variable") == "iam:PassedToService" for c in _blocks(st, "condition")):
                problems.append(f"{where}: iam:PassRole without an iam:PassedToService condition")
    return problems


def _names_roles(module: Module, resource: Any) -> bool:
    """A PassRole resource is aws_iam_role.X.arn, or local.<x>_role_arns: a list of role
    ARNs of another state (built from modules/naming), none of them with a wildcard."""
    text = str(resource)
    if "aws_iam_role." in text and "*" not in text:
        return True
    m = re.fullmatch(r"\$\{local\.([\w-]+_role_arns)\}", text)
    if not m:
        return False
    value = module.locals.get(m.group(1))
    strings = list(_walk_strings(value))
    return bool(strings) and all(":role/" in s and "*" not in s for s in strings)


def check_no_ssh_ingress(module: Module) -> list[str]:
    """No ingress rule opens port 22 (or all ports / all protocols)."""
    problems = []

    def port_range_problem(where: str, protocol: Any, from_port: Any, to_port: Any) -> None:
        protocol = str(resolve(module, protocol))
        if protocol in ("-1", "all"):
            problems.append(f"{where}: all protocols/ports (includes SSH)")
            return
        lo, hi = resolve(module, from_port), resolve(module, to_port)
        if not isinstance(lo, int) or not isinstance(hi, int):
            problems.append(f"{where}: port range {from_port!r}-{to_port!r} cannot be checked statically")
            return
        if lo <= 22 <= hi:
            problems.append(f"{where}: ingress on port 22 (SSH)")

    for name, body in module.resources.get("aws_security_group", {}).items():
        for rule in _blocks(body, "ingress"):
            port_range_problem(f"aws_security_group.{name} ingress", rule.get("protocol"), rule.get("from_port"), rule.get("to_port"))
    for name, body in module.resources.get("aws_security_group_rule", {}).items():
        if body.get("type") == "ingress":
            port_range_problem(f"aws_security_group_rule.{name}", body.get("protocol"), body.get("from_port"), body.get("to_port"))
    for name, body in module.resources.get("aws_vpc_security_group_ingress_rule", {}).items():
        port_range_problem(
            f"aws_vpc_security_group_ingress_rule.{name}", body.get("ip_protocol"), body.get("from_port"), body.get("to_port")
        )
    return problems


def check_no_public_ip(module: Module) -> list[str]:
    """ECS services run in private subnets with assign_public_ip = false (explicitly)."""
    problems = []
    services = module.resources.get("aws_ecs_service", {})
    if not services:
        problems.append("no aws_ecs_service found")
    for name, body in services.items():
        nets = _blocks(body, "network_configuration")
        if not nets:
            problems.append(f"aws_ecs_service.{name}: no network_configuration")
        for net in nets:
            if resolve(module, net.get("assign_public_ip")) is not False:
                problems.append(f"aws_ecs_service.{name}: assign_public_ip must be false")
            subnets = " ".join(_walk_strings(net.get("subnets")))
            if "aws_subnet.private" not in subnets:
                problems.append(f"aws_ecs_service.{name}: tasks must run in aws_subnet.private subnets")
    return problems


def table_key_schema(module: Module) -> dict[str, Any]:
    tables = module.resources.get("aws_dynamodb_table", {})
    if len(tables) != 1:
        return {"error": f"expected exactly one aws_dynamodb_table, found {len(tables)}"}
    (name, body), = tables.items()
    attributes = {a.get("name"): a.get("type") for a in _blocks(body, "attribute")}
    return {
        "table": name,
        "hash_key": body.get("hash_key"),
        "range_key": body.get("range_key"),
        "attributes": attributes,
        "body": body,
    }


def check_table_matches_code(module: Module, partition_key: str | None, sort_key: str | None,
                             key_type: str = "S") -> list[str]:
    """The table's hash/range keys and their attribute types equal the Rust constants."""
    schema = table_key_schema(module)
    if "error" in schema:
        return [schema["error"]]
    problems = []
    if partition_key is None:
        problems.append("PARTITION_KEY constant not found in src/ (the DynamoDB backend has not landed yet?)")
    elif schema["hash_key"] != partition_key:
        problems.append(f"table hash_key {schema['hash_key']!r} != code PARTITION_KEY {partition_key!r}")
    if sort_key is None:
        problems.append("SORT_KEY constant not found in src/ (the DynamoDB backend has not landed yet?)")
    elif schema["range_key"] != sort_key:
        problems.append(f"table range_key {schema['range_key']!r} != code SORT_KEY {sort_key!r}")
    for key in (schema["hash_key"], schema["range_key"]):
        if schema["attributes"].get(key) != key_type:
            problems.append(f"key attribute {key!r} has type {schema['attributes'].get(key)!r}, expected {key_type!r}")
    extra = set(schema["attributes"]) - {schema["hash_key"], schema["range_key"]}
    if extra:
        problems.append(f"attributes {sorted(extra)} declared but not keys (no GSIs expected)")
    return problems


def check_table_settings(module: Module) -> list[str]:
    schema = table_key_schema(module)
    if "error" in schema:
        return [schema["error"]]
    body = schema["body"]
    problems = []
    if body.get("billing_mode") != "PAY_PER_REQUEST":
        problems.append("table billing_mode must be PAY_PER_REQUEST")
    if not any(b.get("enabled") is True for b in _blocks(body, "point_in_time_recovery")):
        problems.append("table point_in_time_recovery must be enabled")
    if not any(b.get("enabled") is True for b in _blocks(body, "server_side_encryption")):
        problems.append("table server_side_encryption must be enabled")
    if body.get("deletion_protection_enabled") is not True:
        problems.append("table deletion_protection_enabled must be true")
    if not any(b.get("enabled") is True and b.get("attribute_name") == "expires_at" for b in _blocks(body, "ttl")):
        problems.append("table TTL must be enabled on expires_at (epoch seconds)")
    return problems


def rust_key_constants(src_dir: Path) -> tuple[str | None, str | None]:
    """(PARTITION_KEY, SORT_KEY) string constants found anywhere under src/."""
    found: dict[str, str] = {}
    pattern = re.compile(r"\b(PARTITION_KEY|SORT_KEY)\s*:\s*&(?:'static\s+)?str\s*=\s*\"([^\"]*)\"")
    if src_dir.is_dir():
        for path in sorted(src_dir.rglob("*.rs")):
            for m in pattern.finditer(path.read_text(errors="replace")):
                found.setdefault(m.group(1), m.group(2))
    return found.get("PARTITION_KEY"), found.get("SORT_KEY")


def container_definitions(module: Module) -> list[tuple[str, dict]]:
    out = []
    for name, body in module.resources.get("aws_ecs_task_definition", {}).items():
        defs = jsonencode_argument(body.get("container_definitions"))
        out.append((name, {"containers": defs, "body": body}))
    return out


def check_task_definition(module: Module) -> list[str]:
    """Fargate task: separate roles, read-only root fs, DynamoDB env, stopTimeout > drain,
    health check through the binary, an immutable (non-latest) image tag."""
    problems = []
    tds = container_definitions(module)
    if not tds:
        return ["no aws_ecs_task_definition found"]
    for name, td in tds:
        body, containers = td["body"], td["containers"]
        where = f"aws_ecs_task_definition.{name}"
        if not isinstance(containers, list) or not containers:
            problems.append(f"{where}: container_definitions must be jsonencode([...])")
            continue
        if body.get("execution_role_arn") == body.get("task_role_arn"):
            problems.append(f"{where}: execution and task roles must differ")
        for c in containers:
            cname = resolve(module, c.get("name"))
            if c.get("readonlyRootFilesystem") is not True:
                problems.append(f"{where}/{cname}: readonlyRootFilesystem must be true")
            env = {e.get("name"): resolve(module, e.get("value")) for e in c.get("environment", [])}
            if env.get("STORAGE") != "dynamodb":
                problems.append(f"{where}/{cname}: STORAGE=dynamodb missing")
            if "TABLE_NAME" not in env:
                problems.append(f"{where}/{cname}: TABLE_NAME missing")
            stop = resolve(module, c.get("stopTimeout"))
            grace = env.get("SHUTDOWN_GRACE_SECONDS", 20)
            try:
                grace = int(grace)
            except (TypeError, ValueError):
                problems.append(f"{where}/{cname}: SHUTDOWN_GRACE_SECONDS cannot be resolved")
                grace = 20
            if not isinstance(stop, int) or not (grace < stop <= 120):
                problems.append(f"{where}/{cname}: stopTimeout {stop!r} must be in ({grace}, 120]")
            hc = (c.get("healthCheck") or {}).get("command", [])
            if not hc or hc[-1] != "healthcheck":
                problems.append(f"{where}/{cname}: healthCheck must run the binary's `healthcheck` subcommand")
            image = str(resolve(module, c.get("image", "")))
            # The first image is pinned by the digest of an image that exists (a data
            # source lookup); a tag could be missing or re-pointed.
            if not re.search(r"@\$\{data\.aws_ecr_image\.[\w-]+\.image_digest\}$|@sha256:[0-9a-f]{64}$", image):
                problems.append(f"{where}/{cname}: image {image!r} is not pinned by digest (@sha256 / data.aws_ecr_image)")
            if image.endswith(":latest"):
                problems.append(f"{where}/{cname}: image {image!r} uses the latest tag")
    # the drain: ALB deregistration delay shorter than the stop timeout
    for tg_name, tg in module.resources.get("aws_lb_target_group", {}).items():
        if tg.get("target_type") == "lambda":
            continue  # no tasks behind it
        delay = resolve(module, tg.get("deregistration_delay", 300))
        for _, td in tds:
            for c in td["containers"] or []:
                stop = resolve(module, c.get("stopTimeout"))
                if isinstance(delay, int) and isinstance(stop, int) and not delay < stop:
                    problems.append(f"aws_lb_target_group.{tg_name}: deregistration_delay {delay} must be < stopTimeout {stop}")
    return problems


def check_container_consistency(module: Module, buildspec: dict, dockerfile: str | None = None) -> list[str]:
    """Container name and port agree across the task definition, the service's
    load_balancer block, the target group, buildspec.yml's imagedefinitions and the
    Dockerfile's EXPOSE."""
    problems = []
    names: dict[str, Any] = {}
    ports: dict[str, Any] = {}
    for name, td in container_definitions(module):
        for c in td["containers"] or []:
            names[f"aws_ecs_task_definition.{name} name"] = resolve(module, c.get("name"))
            for pm in c.get("portMappings", []):
                ports[f"aws_ecs_task_definition.{name} containerPort"] = resolve(module, pm.get("containerPort"))
    for name, svc in module.resources.get("aws_ecs_service", {}).items():
        for lb in _blocks(svc, "load_balancer"):
            names[f"aws_ecs_service.{name} load_balancer.container_name"] = resolve(module, lb.get("container_name"))
            ports[f"aws_ecs_service.{name} load_balancer.container_port"] = resolve(module, lb.get("container_port"))
    for name, tg in module.resources.get("aws_lb_target_group", {}).items():
        if tg.get("target_type") == "lambda":
            continue  # a Lambda target group has no port
        ports[f"aws_lb_target_group.{name} port"] = resolve(module, tg.get("port"))
    names["buildspec.yml imagedefinitions name"] = buildspec_container_name(buildspec)
    if dockerfile is not None:
        m = re.search(r"^EXPOSE\s+(\d+)", dockerfile, flags=re.M)
        ports["Dockerfile EXPOSE"] = int(m.group(1)) if m else None
    for label, values in (("container name", names), ("container port", ports)):
        distinct = set(values.values())
        if len(distinct) != 1 or None in distinct:
            detail = ", ".join(f"{k}={v!r}" for k, v in sorted(values.items()))
            problems.append(f"{label} disagrees: {detail}")
    if not any("aws_ecs_service" in k for k in names):
        problems.append("no aws_ecs_service load_balancer block found")
    return problems


def check_ecr(module: Module) -> list[str]:
    problems = []
    repos = module.resources.get("aws_ecr_repository", {})
    if not repos:
        problems.append("no aws_ecr_repository")
    for name, body in repos.items():
        if body.get("image_tag_mutability") != "IMMUTABLE":
            problems.append(f"aws_ecr_repository.{name}: image tags must be IMMUTABLE")
        if not any(b.get("scan_on_push") is True for b in _blocks(body, "image_scanning_configuration")):
            problems.append(f"aws_ecr_repository.{name}: scan_on_push must be true")
    if not module.resources.get("aws_ecr_lifecycle_policy"):
        problems.append("no aws_ecr_lifecycle_policy")
    return problems


def check_service_deployment(module: Module) -> list[str]:
    problems = []
    for name, body in module.resources.get("aws_ecs_service", {}).items():
        where = f"aws_ecs_service.{name}"
        if resolve(module, body.get("deployment_minimum_healthy_percent")) != 100:
            problems.append(f"{where}: deployment_minimum_healthy_percent must be 100")
        if resolve(module, body.get("deployment_maximum_percent")) != 200:
            problems.append(f"{where}: deployment_maximum_percent must be 200")
        cb = _blocks(body, "deployment_circuit_breaker") + _dynamic_contents(body, "deployment_circuit_breaker")
        if not any(b.get("enable") is True and b.get("rollback") is True for b in cb):
            problems.append(f"{where}: deployment circuit breaker with rollback required")
        alarms = _blocks(body, "alarms") + _dynamic_contents(body, "alarms")
        if not any(b.get("enable") is True and b.get("rollback") is True and b.get("alarm_names") for b in alarms):
            problems.append(f"{where}: alarm-based rollback (alarms block with rollback = true) required")
        ignored = " ".join(_walk_strings([lc.get("ignore_changes") for lc in _blocks(body, "lifecycle")]))
        for attr, why in (("task_definition", "the pipeline owns the running task definition"),
                          ("desired_count", "autoscaling owns the task count")):
            if attr not in ignored:
                problems.append(f"{where}: lifecycle.ignore_changes must list {attr} ({why})")
        count = resolve(module, body.get("desired_count"))
        if not isinstance(count, int) or count < 2:
            problems.append(f"{where}: desired_count must be at least 2")
    return problems


# --------------------------------------------------------------------------------------
# buildspec.yml / README checks
# --------------------------------------------------------------------------------------

REQUIRED_PHASES = ("install", "pre_build", "build")


def readme_test_commands(readme: str | None) -> list[str]:
    """Lines inside fenced code blocks of the README that are exactly `scripts/test.sh`-like
    test commands (the team's convention: a fenced line `scripts/test.sh`)."""
    if readme is None:
        return []
    commands, fenced = [], False
    for line in readme.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced and line.strip() == "scripts/test.sh":
            commands.append(line.strip())
    return commands


def buildspec_commands(buildspec: dict) -> list[tuple[str, str]]:
    """(phase, command) in execution order."""
    out = []
    phases = buildspec.get("phases") or {}
    for phase in ("install", "pre_build", "build", "post_build"):
        for cmd in (phases.get(phase) or {}).get("commands") or []:
            out.append((phase, " ".join(str(cmd).split())))
    return out


def buildspec_container_name(buildspec: dict) -> str | None:
    variables = ((buildspec.get("env") or {}).get("variables") or {})
    name = variables.get("CONTAINER_NAME")
    text = " ".join(c for _, c in buildspec_commands(buildspec))
    if name and "CONTAINER_NAME" in text:
        return str(name)
    m = re.search(r'"name"\s*:\s*"([\w-]+)"', text)
    return m.group(1) if m else None


def buildspec_cargo_builds(buildspec: dict) -> list[tuple[list[str], list[str]]]:
    """(binaries, features) of every `cargo build` in the buildspec, including those inside a
    `docker run ... bash -c '...'` (any path ending in `cargo`)."""
    builds = []
    for _, cmd in buildspec_commands(buildspec):
        tokens = [t.strip("\"'") for t in cmd.split() if t != "\\"]
        for i, token in enumerate(tokens[:-1]):
            if not (token.endswith("cargo") and tokens[i + 1] == "build"):
                continue
            bins, features = [], []
            j = i + 2
            while j < len(tokens) and tokens[j].startswith("-"):
                option = tokens[j]
                if option in ("--bin", "--features", "-F", "--target-dir", "--target", "--profile",
                              "-p", "--package") and j + 1 < len(tokens):
                    value = tokens[j + 1]
                    if option == "--bin":
                        bins.append(value)
                    elif option in ("--features", "-F"):
                        features += [f for f in re.split(r"[ ,]", value) if f]
                    j += 2
                else:
                    if option.startswith("--features="):
                        features += [f for f in re.split(r"[ ,]", option.split("=", 1)[1]) if f]
                    j += 1
            builds.append((bins, features))
    return builds


def check_buildspec_cargo(buildspec: dict, cargo_toml: str) -> list[str]:
    """The buildspec builds binaries and features Cargo.toml declares, each binary with its
    required features, and the Lambda's binary among them."""
    cargo = tomllib.loads(cargo_toml)
    declared = set(cargo.get("features") or {})
    binaries = {b["name"]: set(b.get("required-features") or []) for b in cargo.get("bin") or []}
    binaries.setdefault(cargo["package"]["name"], set())  # src/main.rs
    problems = []
    builds = buildspec_cargo_builds(buildspec)
    for bins, features in builds:
        for feature in features:
            if feature not in declared:
                problems.append(f"buildspec builds with feature {feature!r}, which Cargo.toml does not declare")
        for name in bins:
            if name not in binaries:
                problems.append(f"buildspec builds --bin {name!r}, which Cargo.toml does not declare")
            elif missing := binaries[name] - set(features):
                problems.append(f"buildspec builds --bin {name!r} without its required features {sorted(missing)}")
    if not any("telemetry-lambda" in bins for bins, _ in builds):
        problems.append("buildspec does not build the telemetry-lambda binary (BUILD_LAMBDA)")
    return problems


def check_buildspec(buildspec: dict, readme: str | None) -> list[str]:
    problems = []
    if str(buildspec.get("version")) != "0.2":
        problems.append("buildspec version must be 0.2")
    phases = buildspec.get("phases") or {}
    for phase in REQUIRED_PHASES:
        if not (phases.get(phase) or {}).get("commands"):
            problems.append(f"buildspec phase {phase} is missing or has no commands")
    commands = buildspec_commands(buildspec)

    # the README's test command, run before the image is built
    readme_cmds = readme_test_commands(readme)
    if readme is None:
        problems.append("README.md not found: cannot compare the buildspec's test command with it")
    elif not readme_cmds:
        problems.append("README.md has no fenced line that is exactly `scripts/test.sh`")
    test_idx = [i for i, (phase, c) in enumerate(commands) if c == "scripts/test.sh" and phase in ("pre_build", "build")]
    if not test_idx:
        problems.append("buildspec does not run `scripts/test.sh` in pre_build/build")
    build_idx = [i for i, (_, c) in enumerate(commands) if c.startswith("docker build")]
    push_idx = [i for i, (_, c) in enumerate(commands) if c.startswith("docker push")]
    if not build_idx:
        problems.append("buildspec has no `docker build`")
    if not push_idx:
        problems.append("buildspec has no `docker push`")
    if test_idx and build_idx and min(test_idx) > min(build_idx):
        problems.append("buildspec builds the image before running the tests")

    # rustup + pinned toolchain, in the install phase
    text = "\n".join(c for _, c in commands)
    if "rustup" not in "\n".join(c for phase, c in commands if phase == "install"):
        problems.append("buildspec does not install Rust with rustup")

    # ECR login
    if not re.search(r"aws ecr get-login-password.*\|\s*docker login --username AWS --password-stdin", text):
        problems.append("buildspec must log in with `aws ecr get-login-password | docker login ... --password-stdin`")

    # tags: commit id, never latest only
    if "CODEBUILD_RESOLVED_SOURCE_VERSION" not in text:
        problems.append("image tag must be derived from CODEBUILD_RESOLVED_SOURCE_VERSION")
    pushed = [ref for _, c in commands for ref in re.findall(r'docker push "?([^"\s]+)"?', c)]
    non_latest = [ref for ref in pushed if not ref.endswith(":latest") and ":" in ref]
    if pushed and not non_latest:
        problems.append("buildspec pushes only `latest`; push the commit-id tag")
    for ref in pushed:
        if ":" in ref and "IMAGE_TAG" not in ref.rsplit(":", 1)[-1] and not ref.endswith(":latest"):
            problems.append(f"pushed tag {ref!r} is not the commit id (IMAGE_TAG)")

    # image.json (the digest both deploys use) in the "image" secondary artifact
    if not re.search(r"describe-images .*imageDigest", text):
        problems.append("buildspec does not look up the pushed image's digest")
    if "image.json" not in text or "IMAGE_URI" not in text:
        problems.append("buildspec does not write image.json with the digest-pinned IMAGE_URI")
    secondary = ((buildspec.get("artifacts") or {}).get("secondary-artifacts")) or {}
    if "image.json" not in ((secondary.get("image") or {}).get("files") or []):
        problems.append("image.json is not in the `image` secondary artifact")
    if "lambda" not in secondary:
        problems.append("no `lambda` secondary artifact (the pipeline's Build stage outputs image and lambda)")
    if buildspec_container_name(buildspec) is None:
        problems.append("cannot find the container name written to imagedefinitions.json")
    return problems


def check_toolchain_pins(buildspec: dict, dockerfile: str, cargo_toml: str | None) -> list[str]:
    """One Rust version everywhere: buildspec's RUST_TOOLCHAIN, the Dockerfile's builder
    image tag and Cargo.toml's rust-version agree; CodeBuild installs rustfmt and clippy."""
    problems = []
    toolchain = str(((buildspec.get("env") or {}).get("variables") or {}).get("RUST_TOOLCHAIN", ""))
    m = re.search(r"^FROM\s+rust:(\d+\.\d+)(?:\.\d+)?-", dockerfile, flags=re.M)
    image_version = m.group(1) if m else None
    if not toolchain:
        problems.append("buildspec.yml has no RUST_TOOLCHAIN variable")
    if image_version is None:
        problems.append("Dockerfile builder is not a version-tagged rust image")
    elif toolchain and not toolchain.startswith(image_version):
        problems.append(f"buildspec RUST_TOOLCHAIN {toolchain} != Dockerfile rust:{image_version}")
    if cargo_toml is not None:
        m = re.search(r'^rust-version\s*=\s*"([^"]+)"', cargo_toml, flags=re.M)
        if m and toolchain and not m.group(1).startswith(toolchain) and not toolchain.startswith(m.group(1)):
            problems.append(f"Cargo.toml rust-version {m.group(1)} != buildspec RUST_TOOLCHAIN {toolchain}")
    text = " ".join(c for _, c in buildspec_commands(buildspec))
    for component in ("rustfmt", "clippy"):
        if f"--component {component}" not in text:
            problems.append(f"buildspec does not install the {component} component")
    return problems


_SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def checkov_skips(tf_texts: dict[str, str]) -> list[tuple[str, str, str]]:
    """(file, check id, reason) of every in-place checkov skip."""
    return [(name, m.group(1), (m.group(2) or "").strip())
            for name, text in sorted(tf_texts.items()) for m in _SKIP.finditer(text)]


def check_checkov_skips(tf_texts: dict[str, str], readme: str | None) -> list[str]:
    """Every checkov skip states a reason in place and is listed in terraform/README.md."""
    problems = []
    for name, check_id, reason in checkov_skips(tf_texts):
        if len(reason) < 15:
            problems.append(f"{name}: checkov skip {check_id} without a real reason")
        if readme is not None and check_id not in readme:
            problems.append(f"{name}: checkov skip {check_id} is not listed in terraform/README.md")
    return problems


def render_imagedefinitions(buildspec: dict, repository_url: str, image_tag: str) -> Any:
    """image_tag: the tag or digest; IMAGE_URI renders as <repository_url>@<image_tag>."""
    """Evaluate the buildspec's printf into imagedefinitions.json's content (for tests)."""
    for _, c in buildspec_commands(buildspec):
        if "imagedefinitions.json" in c and c.startswith("printf"):
            m = re.match(r"printf '([^']*)' (.*?) > \S*imagedefinitions.json", c)
            if not m:
                return None
            fmt, args = m.group(1), re.findall(r'"([^"]*)"', m.group(2))
            env = {
                "CONTAINER_NAME": buildspec_container_name(buildspec),
                "ECR_REPOSITORY_URL": repository_url,
                "IMAGE_TAG": image_tag,
                "IMAGE_URI": f"{repository_url}@{image_tag}",
            }
            values = [re.sub(r"\$\{(\w+)\}", lambda mm: env.get(mm.group(1), ""), a) for a in args]
            return json.loads(fmt.replace("\\n", "") % tuple(values))
    return None


# --------------------------------------------------------------------------------------
# Terraform versions and lock files
# --------------------------------------------------------------------------------------


def _terraform_block(module: Module) -> dict:
    for parsed in module.raw.values():
        for block in parsed.get("terraform", []):
            return block
    return {}


def check_required_version(module: Module, minimum: tuple[int, int]) -> list[str]:
    """required_version has a lower bound of at least `minimum` (e.g. use_lockfile: 1.10)."""
    constraint = str(_terraform_block(module).get("required_version") or "")
    m = re.search(r">=\s*(\d+)\.(\d+)", constraint)
    if not m:
        return [f"required_version {constraint!r} has no >= lower bound"]
    if (int(m.group(1)), int(m.group(2))) < minimum:
        return [f"required_version {constraint!r} allows Terraform older than {minimum[0]}.{minimum[1]}"]
    return []


def check_provider_lock(module: Module, lock_text: str | None) -> list[str]:
    """The AWS provider is pinned with an upper bound and the lock file selects a version."""
    providers = _terraform_block(module).get("required_providers") or [{}]
    aws = (providers[0] if isinstance(providers, list) else providers).get("aws") or {}
    problems = []
    if aws.get("source") != "hashicorp/aws" or "<" not in str(aws.get("version", "")):
        problems.append(f"aws provider must be hashicorp/aws with an upper version bound, got {aws!r}")
    if lock_text is None:
        return problems + [".terraform.lock.hcl is not committed"]
    m = re.search(r'provider "registry\.terraform\.io/hashicorp/aws" \{\s*version\s*=\s*"([\d.]+)"', lock_text)
    if not m:
        return problems + [".terraform.lock.hcl does not lock hashicorp/aws"]
    major = int(m.group(1).split(".")[0])
    if major != 5:
        problems.append(f"locked aws provider {m.group(1)} is outside the pinned major version 5")
    if "hashes" not in lock_text:
        problems.append(".terraform.lock.hcl has no hashes")
    return problems
