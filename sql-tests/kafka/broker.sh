#!/usr/bin/env bash
# A single-node Apache Kafka 4 broker (KRaft, no ZooKeeper) on loopback, for tests and
# benchmarks:
#   broker.sh start DIR PORT   formats DIR afresh and starts a broker whose PLAINTEXT
#                              listener is 127.0.0.1:PORT, SASL_PLAINTEXT (PLAIN and
#                              SCRAM-SHA-256, user henge / password henge-secret) PORT+2,
#                              SSL PORT+3 (a self-signed certificate for 127.0.0.1, its
#                              PEM in DIR/tls/ca.pem), controller PORT+1; returns once it
#                              takes connections.
#   broker.sh restart DIR      starts the broker of DIR again, keeping its data.
#   broker.sh stop DIR         stops it (SIGKILL with `stop DIR -9`).
#   broker.sh install          only fetches the broker's jars.
# The broker's jars come from Maven Central (pom.xml beside this script) into
# $HOME/.cache/henge/kafka once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HENGE_KAFKA_CACHE:-$HOME/.cache/henge/kafka}"
lib="$cache/lib-$(sha256sum "$here/pom.xml" | cut -c1-12)"

install() {
  [ -f "$lib/.complete" ] && return
  mkdir -p "$cache"
  # Tests start brokers in parallel: one of them installs, the others wait for it.
  (
    flock 9
    if [ ! -f "$lib/.complete" ]; then
      rm -rf "$lib"
      mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$lib" -DincludeScope=runtime >&2
      touch "$lib/.complete"
    fi
  ) 9> "$cache/install.lock"
}

run() {
  local dir="$1"
  : > "$dir/broker.log"
  nohup java -Xms256m -Xmx768m -cp "$lib/*" -Dlog4j.configuration="file:$dir/log4j.properties" \
    kafka.Kafka "$dir/server.properties" >> "$dir/broker.log" 2>&1 &
  echo $! > "$dir/broker.pid"
  local port
  port="$(sed -n 's/^# port=//p' "$dir/server.properties")"
  for _ in $(seq 1 120); do
    if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
      echo "the Kafka broker exited; its log:" >&2
      tail -50 "$dir/broker.log" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "the Kafka broker did not listen on $port within 60 s" >&2
  return 1
}

case "${1:-}" in
  install)
    install
    ;;
  start)
    dir="$2"; port="$3"
    install
    rm -rf "$dir"; mkdir -p "$dir/data" "$dir/tls"
    keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 \
      -dname CN=127.0.0.1 -ext SAN=IP:127.0.0.1 -ext BC=ca:true \
      -keystore "$dir/tls/broker.p12" -storetype PKCS12 -storepass henge-tls -keypass henge-tls \
      > "$dir/tls/keytool.log" 2>&1 || { cat "$dir/tls/keytool.log" >&2; exit 1; }
    keytool -exportcert -rfc -alias broker -keystore "$dir/tls/broker.p12" \
      -storepass henge-tls -file "$dir/tls/ca.pem" >> "$dir/tls/keytool.log" 2>&1
    cat > "$dir/server.properties" <<PROPS
# port=$port
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$((port + 1))
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 1)),SASL_PLAINTEXT://127.0.0.1:$((port + 2)),SSL://127.0.0.1:$((port + 3))
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$((port + 2)),SSL://127.0.0.1:$((port + 3))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=henge-tls
ssl.key.password=henge-tls
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_henge="henge-secret";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$dir/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.partitions=1
auto.create.topics.enable=false
PROPS
    cat > "$dir/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/broker.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
    uuid="$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    java -cp "$lib/*" kafka.tools.StorageTool format -t "$uuid" -c "$dir/server.properties" \
      --add-scram 'SCRAM-SHA-256=[name=henge,password=henge-secret]' > "$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; exit 1; }
    run "$dir"
    ;;
  restart)
    run "$2"
    ;;
  stop)
    dir="$2"; signal="${3:--15}"
    if [ -f "$dir/broker.pid" ]; then
      pid="$(cat "$dir/broker.pid")"
      kill "$signal" "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/broker.pid"
    fi
    ;;
  *)
    echo "usage: broker.sh start DIR PORT | restart DIR | stop DIR [-9] | install" >&2
    exit 2
    ;;
esac
