variable "name" {
  description = "Project name; every resource is named <name>-<environment>-... (ECS cluster/service, roles, table, alarms)."
  type        = string
  default     = "telemetry"

  # The longest derived names: target groups "<name>-<environment>-green" (AWS limit 32)
  # and the artifact bucket prefix "<name>-artifacts-" (37). 20 + 1 + 5 + 6 = 32.
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (test, prod, ...): 2-5 lower-case letters or digits."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,4}$", var.environment))
    error_message = "environment must be 2-5 lower-case letters or digits, starting with a letter."
  }
}

variable "ecr_repository_name" {
  description = "Name of the shared ECR repository the pipeline pushes to (created by pipeline/). Null: the project name."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Commit tag of the image the task definition registers. Only the first apply needs it (the pipeline owns deploys); null uses the repository's most recent image. The plan fails if the image does not exist."
  type        = string
  default     = null

  validation {
    condition     = var.image_tag == null ? true : (var.image_tag != "latest" && length(var.image_tag) > 0)
    error_message = "image_tag must be an immutable commit tag, never \"latest\"."
  }
}

variable "deployment" {
  description = "How the pipeline rolls out a new image: \"rolling\" (ECS rolling update, circuit breaker and alarm rollback) or \"blue_green\" (CodeDeploy, two target groups, a test listener, rollback on failure and on alarms)."
  type        = string
  default     = "rolling"

  validation {
    condition     = contains(["rolling", "blue_green"], var.deployment)
    error_message = "deployment must be \"rolling\" or \"blue_green\"."
  }
}

# --- network -----------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC; split into one public and one private subnet per AZ."
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

# --- load balancer, HTTPS ----------------------------------------------------

variable "domain_name" {
  description = "Optional DNS name of the service (e.g. telemetry.example.com). With route53_zone_id, an ACM certificate is issued for it (DNS validation) and an alias record points it at the ALB; HTTP then redirects to HTTPS."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone holding domain_name (required with domain_name)."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "An existing ACM certificate for the HTTPS listener, instead of issuing one for domain_name. When either is set, HTTP redirects to HTTPS."
  type        = string
  default     = null
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listeners (TLS 1.2 or newer only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = can(regex("TLS13-1-2|TLS-1-2", var.ssl_policy))
    error_message = "ssl_policy must be a TLS 1.2+ policy (ELBSecurityPolicy-TLS13-1-2-* or ELBSecurityPolicy-TLS-1-2-*)."
  }
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

variable "metrics_public" {
  description = "Route GET /metrics from the internet. Default false: the listeners answer 404 and Prometheus scrapes the tasks inside the VPC (metrics_scrape_cidrs)."
  type        = bool
  default     = false
}

variable "metrics_scrape_cidrs" {
  description = "CIDR blocks inside the VPC (or peered) allowed to scrape the tasks' /metrics on the service port."
  type        = list(string)
  default     = []
}

variable "test_listener_port" {
  description = "Blue/green only: port of the test listener that reaches the replacement tasks before traffic shifts."
  type        = number
  default     = 8443
}

variable "test_listener_cidrs" {
  description = "Blue/green only: CIDR blocks allowed to reach the test listener (none by default)."
  type        = list(string)
  default     = []
}

# --- service -----------------------------------------------------------------

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
  description = "Initial number of tasks; autoscaling owns it afterwards."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 1
    error_message = "desired_count must be at least 1."
  }
}

variable "min_capacity" {
  description = "Autoscaling lower bound on the number of tasks (2 or more for a service that must survive an AZ loss)."
  type        = number
  default     = 2

  validation {
    condition     = var.min_capacity >= 1
    error_message = "min_capacity must be at least 1."
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

variable "memory_target_percent" {
  description = "Target average memory utilisation (percent) for target-tracking autoscaling."
  type        = number
  default     = 70
}

variable "requests_per_target" {
  description = "Target ALB requests per task per minute for request-count autoscaling (rolling deployments; blue/green swaps target groups, so it scales on CPU and memory only)."
  type        = number
  default     = 3000
}

variable "scale_in_cooldown_seconds" {
  description = "Seconds after a scale-in before another scale-in."
  type        = number
  default     = 300
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds after a scale-out before another scale-out."
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
  description = "Retention of the CloudWatch log groups (service, Lambda, VPC flow logs), in days."
  type        = number
  default     = 365
}

variable "metrics_token_enabled" {
  description = "Create a METRICS_TOKEN secret and pass it to the task: /metrics then needs `authorization: Bearer <token>`."
  type        = bool
  default     = false
}

# --- DELETE /picus/* as a Lambda function ---------------------------------------

variable "lambda_delete_enabled" {
  description = "Serve DELETE /picus/* from the telemetry-lambda function behind the ALB instead of the service. Needs lambda_s3_bucket/lambda_s3_key for the first deploy; the pipeline deploys later code."
  type        = bool
  default     = false
}

variable "lambda_s3_bucket" {
  description = "Bucket holding the first telemetry-lambda zip (the pipeline's artifact bucket, see terraform/README.md)."
  type        = string
  default     = null
}

variable "lambda_s3_key" {
  description = "Key of the first telemetry-lambda zip in lambda_s3_bucket."
  type        = string
  default     = null
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of the DELETE function: caps its share of the account's Lambda concurrency and the load it puts on the table."
  type        = number
  default     = 10
}

# --- monitoring --------------------------------------------------------------

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the alarm SNS topic (confirm the subscription mail). Null for none."
  type        = string
  default     = null
}

variable "p99_latency_threshold_seconds" {
  description = "Alarm (and roll a deployment back) when the p99 response time exceeds this many seconds."
  type        = number
  default     = 0.5
}

variable "lambda_api_tokens" {
  description = "API_TOKENS of the DELETE function: the SHA-256 digests of the admin tokens of the API_TOKENS secret (admin:sha256:<64 hex>, comma-separated). DELETE /picus/* needs an admin token there as on the service; digests only, so the Lambda's environment and the Terraform state never hold a usable token. Required when lambda_delete_enabled."
  type        = string
  default     = ""
  sensitive   = true

  validation {
    condition     = alltrue([for e in compact(split(",", var.lambda_api_tokens)) : can(regex("^admin:sha256:[0-9a-f]{64}$", trimspace(e)))])
    error_message = "lambda_api_tokens entries must be admin:sha256:<64 lower-case hex> (only admin tokens may delete)."
  }
}
