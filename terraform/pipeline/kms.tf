# One customer-managed key for the delivery stack's data at rest: artifact bucket, ECR,
# CodeBuild, CodePipeline, its log groups, the approval topic and the smoke tokens.
module "kms" {
  source = "../modules/kms"

  description = "${var.name} delivery: artifacts, images, build logs, approvals, smoke tokens"
  alias       = "${var.name}-delivery"
}
