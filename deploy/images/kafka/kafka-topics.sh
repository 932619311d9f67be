#!/bin/sh
# The admin CLI's topic command, as in the official image's bin/kafka-topics.sh
exec java -Xmx128m -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
  -cp "/opt/kafka/libs/*" org.apache.kafka.tools.TopicCommand "$@"
