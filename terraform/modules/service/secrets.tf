# API tokens (API_TOKENS: comma-separated scope:token entries, scopes read, write, admin; a
# token may be given as sha256:<64 hex>) and the optional METRICS_TOKEN. Terraform creates
# the secrets, never their values: values never enter the state; operators put them with
# `aws secretsmanager put-secret-value` (terraform/README.md, "Tokens").

resource "aws_secretsmanager_secret" "api_tokens" {
  #checkov:skip=CKV2_AWS_57:Tokens are handed to sensor fleets and dashboards by people; rotation is a documented operator procedure (terraform/README.md), not a rotation Lambda.
  name                    = module.names.api_tokens_secret_name
  description             = "API_TOKENS of ${local.prefix}: comma-separated scope:token entries (read, write, admin; token or sha256:<hex>)"
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret" "metrics_token" {
  #checkov:skip=CKV2_AWS_57:The scrape token is shared with Prometheus by an operator; rotation is a documented procedure (terraform/README.md).
  count = var.metrics_token_enabled ? 1 : 0

  name                    = "${local.prefix}/metrics-token"
  description             = "METRICS_TOKEN of ${local.prefix}: the bearer token Prometheus sends to /metrics"
  kms_key_id              = module.kms.key_arn
  recovery_window_in_days = 7
}

locals {
  task_secrets = concat(
    [{ name = "API_TOKENS", valueFrom = aws_secretsmanager_secret.api_tokens.arn }],
    [for s in aws_secretsmanager_secret.metrics_token : { name = "METRICS_TOKEN", valueFrom = s.arn }],
  )
  task_secret_arns = concat([aws_secretsmanager_secret.api_tokens.arn], aws_secretsmanager_secret.metrics_token[*].arn)
}
