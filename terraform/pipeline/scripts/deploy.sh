#!/usr/bin/env bash
# Deploys one image digest to one environment: registers the next revision of the
# environment's task definition family (Terraform's latest content, only the image
# replaced) and rolls it out; when a Lambda zip was built, updates the DELETE function.
# The single writer of what an environment runs: the pipeline (DeployTest/DeployProd)
# and .github/workflows/deploy.yml both call this script; Terraform never does.
#
# Environment:
#   IMAGE_URI            <registry>/<repo>@sha256:<digest>, or IMAGE_DETAIL_FILE: JSON {"ImageURI": ...}
#   CLUSTER SERVICE TASK_FAMILY CONTAINER_NAME CONTAINER_PORT
#   CODEDEPLOY_APP CODEDEPLOY_GROUP   used when the service's controller is CODE_DEPLOY
#   LAMBDA_FUNCTION + LAMBDA_MANIFEST optional: manifest.json {"built": true, "zip": "..."}
#   DEPLOY_TIMEOUT_SECONDS (1800) DEPLOY_POLL_SECONDS (15)
set -euo pipefail

die() { echo "deploy: $*" >&2; exit 1; }

for v in CLUSTER SERVICE TASK_FAMILY CONTAINER_NAME; do
  [[ -n "${!v:-}" ]] || die "$v is not set"
done
CONTAINER_PORT="${CONTAINER_PORT:-8080}"
timeout="${DEPLOY_TIMEOUT_SECONDS:-1800}"
poll="${DEPLOY_POLL_SECONDS:-15}"

if [[ -z "${IMAGE_URI:-}" ]]; then
  [[ -f "${IMAGE_DETAIL_FILE:-}" ]] || die "neither IMAGE_URI nor IMAGE_DETAIL_FILE given"
  IMAGE_URI="$(jq -er '.ImageURI' "$IMAGE_DETAIL_FILE")"
fi
# The same bytes in every environment: a digest, never a tag that could be re-pointed.
[[ "$IMAGE_URI" =~ @sha256:[0-9a-f]{64}$ ]] || die "image must be pinned by digest, got '$IMAGE_URI'"

echo "deploy: $IMAGE_URI -> $CLUSTER/$SERVICE"

current="$(aws ecs describe-task-definition --task-definition "$TASK_FAMILY" --query taskDefinition --output json)"
next="$(jq --arg c "$CONTAINER_NAME" --arg img "$IMAGE_URI" '
  if any(.containerDefinitions[]; .name == $c) then . else error("no container \($c) in the family") end
  | .containerDefinitions |= map(if .name == $c then .image = $img else . end)
  | {family, taskRoleArn, executionRoleArn, networkMode, containerDefinitions, volumes,
     placementConstraints, requiresCompatibilities, cpu, memory, runtimePlatform,
     ephemeralStorage, pidMode, ipcMode, proxyConfiguration}
  | with_entries(select(.value != null))' <<<"$current")"
task_definition="$(aws ecs register-task-definition --cli-input-json "$next" \
  --query taskDefinition.taskDefinitionArn --output text)"
echo "deploy: registered $task_definition"

controller="$(aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
  --query 'services[0].deploymentController.type' --output text)"

case "$controller" in
  ECS)
    aws ecs update-service --cluster "$CLUSTER" --service "$SERVICE" \
      --task-definition "$task_definition" --query service.serviceName --output text >/dev/null
    # The circuit breaker and the rollback alarms end a bad deployment as FAILED.
    deadline=$((SECONDS + timeout))
    while :; do
      state="$(aws ecs describe-services --cluster "$CLUSTER" --services "$SERVICE" \
        --query "services[0].deployments[?taskDefinition=='${task_definition}'].rolloutState | [0]" --output text)"
      case "$state" in
        COMPLETED) echo "deploy: rollout completed"; break ;;
        FAILED) die "rollout failed; ECS rolled the service back to the previous deployment" ;;
      esac
      ((SECONDS < deadline)) || die "rollout not complete after ${timeout}s (state $state)"
      sleep "$poll"
    done
    ;;
  CODE_DEPLOY)
    [[ -n "${CODEDEPLOY_APP:-}" && -n "${CODEDEPLOY_GROUP:-}" ]] || die "CODEDEPLOY_APP/CODEDEPLOY_GROUP not set"
    appspec="$(jq -cn --arg td "$task_definition" --arg c "$CONTAINER_NAME" --argjson p "$CONTAINER_PORT" \
      '{version: 0.0, Resources: [{TargetService: {Type: "AWS::ECS::Service", Properties: {
         TaskDefinition: $td, LoadBalancerInfo: {ContainerName: $c, ContainerPort: $p}}}}]}')"
    revision="$(jq -cn --arg s "$appspec" '{revisionType: "AppSpecContent", appSpecContent: {content: $s}}')"
    deployment="$(aws deploy create-deployment --application-name "$CODEDEPLOY_APP" \
      --deployment-group-name "$CODEDEPLOY_GROUP" --revision "$revision" \
      --query deploymentId --output text)"
    echo "deploy: CodeDeploy deployment $deployment"
    deadline=$((SECONDS + timeout))
    while :; do
      status="$(aws deploy get-deployment --deployment-id "$deployment" \
        --query deploymentInfo.status --output text)"
      case "$status" in
        Succeeded) echo "deploy: traffic shifted to the new tasks"; break ;;
        Failed | Stopped) die "CodeDeploy deployment $deployment $status (rolled back)" ;;
      esac
      ((SECONDS < deadline)) || die "deployment $deployment not done after ${timeout}s (status $status)"
      sleep "$poll"
    done
    ;;
  *) die "unexpected deployment controller '$controller' for $SERVICE" ;;
esac

if [[ -n "${LAMBDA_FUNCTION:-}" ]]; then
  [[ -f "${LAMBDA_MANIFEST:-}" ]] || die "LAMBDA_FUNCTION set but no LAMBDA_MANIFEST"
  if [[ "$(jq -r '.built' "$LAMBDA_MANIFEST")" == "true" ]]; then
    zip="$(dirname "$LAMBDA_MANIFEST")/$(jq -er '.zip' "$LAMBDA_MANIFEST")"
    aws lambda update-function-code --function-name "$LAMBDA_FUNCTION" \
      --zip-file "fileb://$zip" --publish --query Version --output text >/dev/null
    aws lambda wait function-updated-v2 --function-name "$LAMBDA_FUNCTION"
    echo "deploy: $LAMBDA_FUNCTION updated"
  else
    die "LAMBDA_FUNCTION set but the build made no Lambda zip (BUILD_LAMBDA off?)"
  fi
fi
