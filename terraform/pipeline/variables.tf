variable "name" {
  description = "Project name: the CodeCommit and ECR repositories, the pipeline, and the prefix the environments' resources share (<name>-<environment>)."
  type        = string
  default     = "telemetry"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the pipeline and both environments."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Extra tags added to every resource through the provider's default_tags."
  type        = map(string)
  default     = {}
}

variable "test_environment" {
  description = "Environment the pipeline deploys and smoke-tests first."
  type        = string
  default     = "test"
}

variable "prod_environment" {
  description = "Environment the pipeline deploys after the manual approval."
  type        = string
  default     = "prod"
}

variable "repository_branch" {
  description = "CodeCommit branch whose pushes trigger the pipeline."
  type        = string
  default     = "main"
}

variable "codebuild_compute_type" {
  description = "CodeBuild compute type of the build; the Rust test suite and release build want at least 2 vCPU / 7 GB."
  type        = string
  default     = "BUILD_GENERAL1_MEDIUM"
}

variable "ecr_keep_images" {
  description = "Number of tagged images the ECR lifecycle policy keeps (older ones expire; untagged ones after 7 days)."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Retention of the build, deploy and smoke log groups, in days."
  type        = number
  default     = 365
}

variable "approval_email" {
  description = "Optional e-mail address told about pending production approvals. Null for none."
  type        = string
  default     = null
}

variable "lambda_delete_enabled" {
  description = "Build the telemetry-lambda zip and deploy it to each environment's DELETE function (set lambda_delete_enabled in the environments too)."
  type        = bool
  default     = false
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose deploy workflow may assume the deploy role through GitHub's OIDC provider. Null: no GitHub deploy role."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null ? true : can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_branch" {
  description = "The only branch of github_repository allowed to assume the deploy role."
  type        = string
  default     = "main"
}

variable "github_oidc_provider_arn" {
  description = "An existing IAM OIDC provider for token.actions.githubusercontent.com (one per account); null creates it."
  type        = string
  default     = null
}
