# One customer-managed key for this environment's data at rest: CloudWatch log groups, the
# SNS topic, the secrets, the Lambda environment and the DynamoDB table.
module "kms" {
  source = "../kms"

  description             = "${local.prefix}: data at rest (logs, table, secrets, alarms)"
  alias                   = local.prefix
  allow_cloudwatch_alarms = true
}
