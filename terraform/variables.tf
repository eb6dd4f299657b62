variable "name" {
  description = "Name prefix for every resource (ECS cluster/service, pipeline, repositories, table)."
  type        = string
  default     = "telemetry"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Extra tags added to every resource through the provider's default_tags."
  type        = map(string)
  default     = {}
}

# --- network -----------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC; split into one public and one private /20-ish subnet per AZ."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Number of availability zones to spread subnets and tasks over (at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6."
  }
}

variable "allowed_cidrs" {
  description = "Client CIDR blocks allowed to reach the load balancer on ports 80 and 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

# --- load balancer -----------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate ARN for the HTTPS listener. When set, HTTP redirects to HTTPS; when null, the service is served on HTTP only."
  type        = string
  default     = null
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.2 or newer only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "alb_deletion_protection" {
  description = "Protect the load balancer from deletion (set false before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "deregistration_delay_seconds" {
  description = "Seconds the ALB keeps sending in-flight requests to a draining target. Must be shorter than stop_timeout_seconds."
  type        = number
  default     = 15
}

# --- service -----------------------------------------------------------------

variable "image_tag" {
  description = "Image tag (the 12-character commit id the pipeline pushes) used by the task definition Terraform registers. The pipeline deploys later commits itself; pass the currently deployed tag on later applies so Terraform does not roll the image back."
  type        = string

  validation {
    condition     = var.image_tag != "latest" && length(var.image_tag) > 0
    error_message = "image_tag must be an immutable commit tag, never \"latest\"."
  }
}

variable "task_cpu" {
  description = "Fargate task CPU units (256, 512, 1024, ...)."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate task memory in MiB, valid for task_cpu."
  type        = number
  default     = 1024
}

variable "desired_count" {
  description = "Initial number of tasks; autoscaling owns it afterwards (at least 2, spread over AZs)."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 2
    error_message = "desired_count must be at least 2 for zero-downtime deploys across AZs."
  }
}

variable "min_capacity" {
  description = "Autoscaling lower bound on the number of tasks (at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.min_capacity >= 2
    error_message = "min_capacity must be at least 2."
  }
}

variable "max_capacity" {
  description = "Autoscaling upper bound on the number of tasks."
  type        = number
  default     = 6
}

variable "cpu_target_percent" {
  description = "Target average CPU utilisation (percent) for target-tracking autoscaling."
  type        = number
  default     = 60
}

variable "stop_timeout_seconds" {
  description = "ECS stopTimeout: seconds between SIGTERM and SIGKILL. Must exceed the service's SHUTDOWN_GRACE_SECONDS (20) and the ALB deregistration delay; Fargate allows at most 120."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout_seconds > 20 && var.stop_timeout_seconds <= 120
    error_message = "stop_timeout_seconds must be in (20, 120]."
  }
}

variable "shutdown_grace_seconds" {
  description = "SHUTDOWN_GRACE_SECONDS passed to the service: how long it drains in-flight requests after SIGTERM."
  type        = number
  default     = 20
}

variable "log_level" {
  description = "RUST_LOG filter for the service."
  type        = string
  default     = "info"
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (service, build, VPC flow logs), in days."
  type        = number
  default     = 365
}

# --- pipeline ----------------------------------------------------------------

variable "repository_branch" {
  description = "CodeCommit branch whose pushes trigger the pipeline."
  type        = string
  default     = "main"
}

variable "require_manual_approval" {
  description = "Insert a manual approval stage between Build and Deploy."
  type        = bool
  default     = false
}

variable "codebuild_compute_type" {
  description = "CodeBuild compute type; the Rust test suite and release build want at least 2 vCPU / 7 GB."
  type        = string
  default     = "BUILD_GENERAL1_MEDIUM"
}

variable "ecr_keep_images" {
  description = "Number of tagged images the ECR lifecycle policy keeps (older ones expire; untagged ones after 7 days)."
  type        = number
  default     = 50
}

# --- monitoring --------------------------------------------------------------

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the alarm SNS topic (confirm the subscription mail). Null for none."
  type        = string
  default     = null
}

variable "p99_latency_threshold_seconds" {
  description = "Alarm when the target p99 response time exceeds this many seconds."
  type        = number
  default     = 0.5
}
