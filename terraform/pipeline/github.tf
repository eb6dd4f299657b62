# GitHub Actions path (.github/workflows/deploy.yml), an alternative to CodePipeline for
# teams on GitHub: the workflow assumes this role through GitHub's OIDC provider (no
# long-lived keys). Only pushes to var.github_branch of var.github_repository may assume it.

locals {
  github_enabled       = var.github_repository != null
  github_oidc_host     = "token.actions.githubusercontent.com"
  create_oidc_provider = local.github_enabled && var.github_oidc_provider_arn == null
  # owner/name, split so the trust condition reads repo:<owner>/<name>:ref:refs/heads/<branch>
  github_owner     = split("/", coalesce(var.github_repository, "none/none"))[0]
  github_repo_name = split("/", coalesce(var.github_repository, "none/none"))[1]
  github_oidc_provider_arn = local.github_enabled ? (
    local.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : var.github_oidc_provider_arn
  ) : null
}

resource "aws_iam_openid_connect_provider" "github" {
  count = local.create_oidc_provider ? 1 : 0

  url            = "https://${local.github_oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "github_assume" {
  #checkov:skip=CKV_AWS_358:The sub condition is exactly repo:<owner>/<name>:ref:refs/heads/<branch> from var.github_repository (validated owner/name), which checkov cannot render while it defaults to null; pipeline/tests github_oidc asserts the rendered condition.
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [coalesce(local.github_oidc_provider_arn, "${local.arn_prefix.iam}:oidc-provider/${local.github_oidc_host}")]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${local.github_owner}/${local.github_repo_name}:ref:refs/heads/${var.github_branch}"]
    }
  }
}

resource "aws_iam_role" "github_deploy" {
  count = local.github_enabled ? 1 : 0

  name                 = "${var.name}-github-deploy"
  description          = "GitHub Actions (${var.github_repository}, ${var.github_branch}): push the image, deploy the environments"
  assume_role_policy   = data.aws_iam_policy_document.github_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "github_deploy" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken supports no resource-level permission
  }

  statement {
    sid = "PushServiceImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:DescribeImages",
    ]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "ImageEncryption"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [module.kms.key_arn]
  }

  source_policy_documents = [data.aws_iam_policy_document.deploy_environments.json]
}

resource "aws_iam_role_policy" "github_deploy" {
  count = local.github_enabled ? 1 : 0

  name   = "push-and-deploy"
  role   = aws_iam_role.github_deploy[0].id
  policy = data.aws_iam_policy_document.github_deploy.json
}
