# One customer-managed key for the delivery stack's data at rest: artifact bucket, ECR,
# CodeBuild, CodePipeline, its log groups, the approval topic and the smoke tokens.
resource "aws_kms_key" "this" {
  description             = "${var.name} delivery: artifacts, images, build logs, approvals, smoke tokens"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-delivery"
  target_key_id = aws_kms_key.this.key_id
}

# A key policy's Resource "*" means "this key" (key policies attach to exactly one key).
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy: the account root must be able to manage its own key, otherwise the key becomes unmanageable.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key only.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key only.
  statement {
    sid    = "AccountAdministersKeyAndEnablesIamPolicies"
    effect = "Allow"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    actions = [
      "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
      "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
      "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
      "kms:RotateKeyOnDemand", "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
    ]
    resources = ["*"] # key policy: "*" is this key
  }

  statement {
    sid    = "CloudWatchLogsEncryptsThisStacksLogGroups"
    effect = "Allow"
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"] # key policy: "*" is this key
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}
