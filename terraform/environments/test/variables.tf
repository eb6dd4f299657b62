variable "name" {
  description = "Project name (the same as in pipeline/)."
  type        = string
  default     = "telemetry"
}

variable "region" {
  description = "AWS region (the same as in pipeline/)."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Extra tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "image_tag" {
  description = "Commit tag of the first image (first apply only; null: the most recent image in the registry)."
  type        = string
  default     = null
}

variable "deployment" {
  description = "\"rolling\" or \"blue_green\" (CodeDeploy)."
  type        = string
  default     = "rolling"
}

variable "vpc_cidr" {
  description = "CIDR block of this environment's VPC."
  type        = string
  default     = "10.41.0.0/16"
}

variable "allowed_cidrs" {
  description = "Client CIDR blocks allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "domain_name" {
  description = "Optional DNS name (ACM certificate + alias record in route53_zone_id)."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 zone of domain_name."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "Existing ACM certificate instead of issuing one for domain_name."
  type        = string
  default     = null
}

variable "min_capacity" {
  description = "Autoscaling lower bound on the number of tasks."
  type        = number
  default     = 1
}

variable "max_capacity" {
  description = "Autoscaling upper bound on the number of tasks."
  type        = number
  default     = 2
}

variable "metrics_public" {
  description = "Route /metrics from the internet (default: 404 at the load balancer)."
  type        = bool
  default     = false
}

variable "metrics_scrape_cidrs" {
  description = "CIDR blocks allowed to scrape the tasks' /metrics inside the VPC."
  type        = list(string)
  default     = []
}

variable "metrics_token_enabled" {
  description = "Pass a METRICS_TOKEN secret to the task."
  type        = bool
  default     = false
}

variable "lambda_delete_enabled" {
  description = "Serve DELETE /picus/* from the Lambda function."
  type        = bool
  default     = false
}

variable "lambda_s3_bucket" {
  description = "Bucket of the first Lambda zip (pipeline output artifact_bucket)."
  type        = string
  default     = null
}

variable "lambda_s3_key" {
  description = "Key of the first Lambda zip (lambda/<commit>.zip)."
  type        = string
  default     = null
}

variable "lambda_api_tokens" {
  description = "Hashed admin tokens of the Lambda (admin:sha256:<hex>, comma-separated)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "alarm_email" {
  description = "Optional e-mail address for the alarms."
  type        = string
  default     = null
}
