#!/usr/bin/env bash
# Attach citywatch's storage policies to three IAM roles, one per component:
#   citywatch-service  (citywatch serve)          service.json
#   citywatch-worker   (Prefect + Dask workers)   worker.json
#   citywatch-analyst  (notebooks, analytics)     analyst.json
# Usage: infra/s3/apply.sh BUCKET PREFIX [ROLE_NAME_PREFIX]
#   e.g. infra/s3/apply.sh city-cctv prod          (storage root s3://city-cctv/prod)
# Needs the aws CLI with rights to create roles' inline policies. The roles themselves
# (trust policies: IRSA service accounts, instance profiles or SSO groups) are yours.
set -euo pipefail
bucket=${1:?bucket name}
prefix=${2:?key prefix of the storage root (no leading or trailing slash)}
roles=${3:-citywatch}
here=$(cd "$(dirname "$0")" && pwd)
for component in service worker analyst; do
  doc=$(sed -e "s|CITY_BUCKET|${bucket}|g" -e "s|CITY_PREFIX|${prefix}|g" "${here}/${component}.json")
  aws iam put-role-policy --role-name "${roles}-${component}" \
    --policy-name citywatch-storage --policy-document "${doc}"
  echo "attached ${component}.json to ${roles}-${component} (s3://${bucket}/${prefix})"
done
