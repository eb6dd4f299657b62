output "codecommit_clone_url_http" {
  description = "HTTPS (git-remote-codecommit or credential helper) clone URL of the CodeCommit repository."
  value       = aws_codecommit_repository.this.clone_url_http
}

output "codecommit_clone_url_ssh" {
  description = "SSH clone URL of the CodeCommit repository."
  value       = aws_codecommit_repository.this.clone_url_ssh
}

output "ecr_repository_url" {
  description = "URL of the ECR repository the pipeline pushes commit-tagged images to."
  value       = aws_ecr_repository.this.repository_url
}

output "artifact_bucket" {
  description = "Artifact bucket; the build also puts lambda/<commit>.zip here (the DELETE function's first code)."
  value       = aws_s3_bucket.artifacts.bucket
}

output "pipeline_name" {
  description = "Name of the CodePipeline pipeline."
  value       = aws_codepipeline.this.name
}

output "smoke_tokens_secret_arn" {
  description = "Secret holding the smoke stage's tokens as JSON {\"write\": ..., \"read\": ...}."
  value       = aws_secretsmanager_secret.smoke_tokens.arn
}

output "github_deploy_role_arn" {
  description = "Role .github/workflows/deploy.yml assumes (repository variable AWS_ROLE_ARN); null without github_repository."
  value       = one(aws_iam_role.github_deploy[*].arn)
}
