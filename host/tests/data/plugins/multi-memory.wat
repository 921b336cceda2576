;; A detector component with five linear memories: four helper core
;; instances of one module, each owning a memory, and the main module that
;; implements the detector world. On its first batch (or tick) it grows each
;; helper memory by __PAGES__ pages of 64 KiB: the test sets that to about 60% of
;; the plugin memory cap, so any two together are over it. A per-memory cap
;; would let all four grow (several times the cap in all); the one budget per
;; plugin instance stops the second grow.
;;
;; The types are written out structurally, as the host's bindings check
;; them (the names and shapes of wit/types.wit); each is exported so that
;; the exported functions only name exported types. Used by
;; host/tests/hostile.rs (`multi_memory_dir`), which replaces __PAGES__ and turns this into
;; binary with the `wat` crate (no `.wasm` is committed).
(component
  (core module $Helper
    (memory 1)
    (func (export "grow") (param i32) (result i32)
      local.get 0
      memory.grow))
  (core instance $h0 (instantiate $Helper))
  (core instance $h1 (instantiate $Helper))
  (core instance $h2 (instantiate $Helper))
  (core instance $h3 (instantiate $Helper))

  (core module $Main
    (import "h0" "grow" (func $g0 (param i32) (result i32)))
    (import "h1" "grow" (func $g1 (param i32) (result i32)))
    (import "h2" "grow" (func $g2 (param i32) (result i32)))
    (import "h3" "grow" (func $g3 (param i32) (result i32)))
    (memory (export "memory") 1)
    ;; The bump allocator's next free byte (below: fixed data).
    (global $heap (mut i32) (i32.const 4096))
    ;; Strings of the description: name at 16 (12 bytes), version at 28
    ;; (5), description at 33 (20).
    (data (i32.const 16) "multi-memory0.1.0hostile test fixture")
    ;; Subscriptions at 128: container (0), kubernetes (1).
    (data (i32.const 128) "\00\01")

    (func $check (param i32)
      local.get 0
      i32.const -1
      i32.eq
      if
        unreachable
      end)

    (func $bomb
      (call $check (call $g0 (i32.const __PAGES__)))
      (call $check (call $g1 (i32.const __PAGES__)))
      (call $check (call $g2 (i32.const __PAGES__)))
      (call $check (call $g3 (i32.const __PAGES__))))

    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      ;; p = align_up(heap, align)
      global.get $heap
      local.get 2
      i32.add
      i32.const 1
      i32.sub
      i32.const 0
      local.get 2
      i32.sub
      i32.and
      local.set $p
      local.get $p
      local.get 3
      i32.add
      global.set $heap
      (block $fits
        (loop $more
          global.get $heap
          memory.size
          i32.const 16
          i32.shl
          i32.le_u
          br_if $fits
          i32.const 16
          memory.grow
          call $check
          br $more))
      local.get $p)

    ;; plugin-info at 256: name, version, description (ptr, len each),
    ;; subscribes (ptr, len), settings (ptr, len).
    (func (export "describe") (result i32)
      (i32.store offset=0 (i32.const 256) (i32.const 16))
      (i32.store offset=4 (i32.const 256) (i32.const 12))
      (i32.store offset=8 (i32.const 256) (i32.const 28))
      (i32.store offset=12 (i32.const 256) (i32.const 5))
      (i32.store offset=16 (i32.const 256) (i32.const 33))
      (i32.store offset=20 (i32.const 256) (i32.const 20))
      (i32.store offset=24 (i32.const 256) (i32.const 128))
      (i32.store offset=28 (i32.const 256) (i32.const 2))
      (i32.store offset=32 (i32.const 256) (i32.const 136))
      (i32.store offset=36 (i32.const 256) (i32.const 0))
      i32.const 256)

    ;; result<_, config-error> at 512, all zero: ok.
    (func (export "configure") (param i32 i32) (result i32)
      i32.const 512)

    ;; list<finding> at 528, all zero: empty.
    (func (export "on-events") (param i32 i32) (result i32)
      call $bomb
      i32.const 528)

    (func (export "on-tick") (param i64) (result i32)
      call $bomb
      i32.const 528))

  (core instance $main (instantiate $Main
    (with "h0" (instance $h0))
    (with "h1" (instance $h1))
    (with "h2" (instance $h2))
    (with "h3" (instance $h3))))

  (type $d-key-value (record (field "key" string) (field "value" string)))
  (export $key-value "key-value" (type $d-key-value))
  (type $d-severity (enum "info" "low" "medium" "high" "critical"))
  (export $severity "severity" (type $d-severity))
  (type $d-event-kind (enum "container" "kubernetes" "network" "file"))
  (export $event-kind "event-kind" (type $d-event-kind))
  (type $d-mount (record
    (field "source" string)
    (field "destination" string)
    (field "read-only" bool)
    (field "kind" string)))
  (export $mount "mount" (type $d-mount))
  (type $d-container-security (record
    (field "network-mode" string)
    (field "pid-mode" string)
    (field "ipc-mode" string)
    (field "userns-mode" string)
    (field "cgroupns-mode" string)
    (field "uts-mode" string)
    (field "privileged" bool)
    (field "cap-add" (list string))
    (field "cap-drop" (list string))
    (field "devices" (list string))
    (field "mounts" (list $mount))
    (field "user" string)
    (field "allow-privilege-escalation" (option bool))
    (field "read-only-rootfs" bool)
    (field "seccomp-profile" string)
    (field "apparmor-profile" string)
    (field "log-driver" string)
    (field "restart-policy" string)))
  (export $container-security "container-security" (type $d-container-security))
  (type $d-container-action (enum
    "create" "start" "restart" "stop" "die" "kill" "destroy" "pause" "unpause"
    "exec-create" "exec-start" "exec-die" "oom" "rename" "update" "attach"
    "network-connect" "network-disconnect" "running" "other"))
  (export $container-action "container-action" (type $d-container-action))
  (type $d-exec-info (record
    (field "command" string)
    (field "user" string)
    (field "privileged" bool)
    (field "tty" bool)))
  (export $exec-info "exec-info" (type $d-exec-info))
  (type $d-container-event (record
    (field "action" $container-action)
    (field "raw-action" string)
    (field "id" string)
    (field "name" string)
    (field "image" string)
    (field "image-digest" string)
    (field "runtime" string)
    (field "labels" (list $key-value))
    (field "security" (option $container-security))
    (field "actor" string)
    (field "exit-code" (option s32))
    (field "signal" string)
    (field "exec" (option $exec-info))
    (field "network" string)
    (field "lifetime-ms" (option u64))))
  (export $container-event "container-event" (type $d-container-event))
  (type $d-container-role (enum "main" "init" "ephemeral"))
  (export $container-role "container-role" (type $d-container-role))
  (type $d-pod-container (record
    (field "role" $container-role)
    (field "name" string)
    (field "image" string)
    (field "security" $container-security)))
  (export $pod-container "pod-container" (type $d-pod-container))
  (type $d-pod-spec (record
    (field "host-network" bool)
    (field "host-pid" bool)
    (field "host-ipc" bool)
    (field "service-account" string)
    (field "node-name" string)
    (field "containers" (list $pod-container))))
  (export $pod-spec "pod-spec" (type $d-pod-spec))
  (type $d-owner-ref (record (field "kind" string) (field "name" string)))
  (export $owner-ref "owner-ref" (type $d-owner-ref))
  (type $d-kubernetes-event (record
    (field "verb" string)
    (field "resource" string)
    (field "subresource" string)
    (field "api-group" string)
    (field "namespace" string)
    (field "name" string)
    (field "user" string)
    (field "groups" (list string))
    (field "stage" string)
    (field "response-code" (option u16))
    (field "request-uri" string)
    (field "source-ips" (list string))
    (field "user-agent" string)
    (field "audit-id" string)
    (field "pod" (option $pod-spec))
    (field "owner" (option $owner-ref))))
  (export $kubernetes-event "kubernetes-event" (type $d-kubernetes-event))
  (type $d-protocol (enum "tcp" "udp"))
  (export $protocol "protocol" (type $d-protocol))
  (type $d-direction (enum "inbound" "outbound" "listen" "unknown"))
  (export $direction "direction" (type $d-direction))
  (type $d-container-ref (record
    (field "id" string)
    (field "name" string)
    (field "image" string)
    (field "pod" string)))
  (export $container-ref "container-ref" (type $d-container-ref))
  (type $d-network-event (record
    (field "protocol" $protocol)
    (field "local-address" string)
    (field "local-port" u16)
    (field "remote-address" string)
    (field "remote-port" u16)
    (field "direction" $direction)
    (field "state" string)
    (field "container" (option $container-ref))
    (field "host-network" bool)))
  (export $network-event "network-event" (type $d-network-event))
  (type $d-file-change (enum "created" "modified" "metadata" "deleted"))
  (export $file-change "file-change" (type $d-file-change))
  (type $d-file-state (record
    (field "sha256" string)
    (field "size" u64)
    (field "mode" u32)
    (field "uid" u32)
    (field "gid" u32)
    (field "mtime" u64)))
  (export $file-state "file-state" (type $d-file-state))
  (type $d-file-event (record
    (field "path" string)
    (field "change" $file-change)
    (field "before" (option $file-state))
    (field "after" (option $file-state))))
  (export $file-event "file-event" (type $d-file-event))
  (type $d-event-body (variant
    (case "container" $container-event)
    (case "kubernetes" $kubernetes-event)
    (case "network" $network-event)
    (case "file" $file-event)))
  (export $event-body "event-body" (type $d-event-body))
  (type $d-event (record
    (field "id" string)
    (field "time" u64)
    (field "node" string)
    (field "source" string)
    (field "body" $event-body)))
  (export $event "event" (type $d-event))
  (type $d-entity-kind (enum "container" "pod" "node" "file" "image" "user" "address"))
  (export $entity-kind "entity-kind" (type $d-entity-kind))
  (type $d-entity (record
    (field "kind" $entity-kind)
    (field "id" string)
    (field "name" string)))
  (export $entity "entity" (type $d-entity))
  (type $d-finding (record
    (field "rule-id" string)
    (field "title" string)
    (field "severity" $severity)
    (field "summary" string)
    (field "techniques" (list string))
    (field "entities" (list $entity))
    (field "evidence" (list $key-value))
    (field "event-ids" (list string))))
  (export $finding "finding" (type $d-finding))
  (type $d-setting-info (record
    (field "name" string)
    (field "kind" string)
    (field "default-value" string)
    (field "description" string)))
  (export $setting-info "setting-info" (type $d-setting-info))
  (type $d-plugin-info (record
    (field "name" string)
    (field "version" string)
    (field "description" string)
    (field "subscribes" (list $event-kind))
    (field "settings" (list $setting-info))))
  (export $plugin-info "plugin-info" (type $d-plugin-info))
  (type $d-config-problem (record (field "path" string) (field "message" string)))
  (export $config-problem "config-problem" (type $d-config-problem))
  (type $d-config-error (record (field "problems" (list $config-problem))))
  (export $config-error "config-error" (type $d-config-error))

  (func (export "describe") (result $plugin-info)
    (canon lift (core func $main "describe") (memory (core memory $main "memory"))
      (realloc (core func $main "cabi_realloc"))))
  (func (export "configure") (param "settings" string) (result (result (error $config-error)))
    (canon lift (core func $main "configure") (memory (core memory $main "memory"))
      (realloc (core func $main "cabi_realloc"))))
  (func (export "on-events") (param "batch" (list $event)) (result (list $finding))
    (canon lift (core func $main "on-events") (memory (core memory $main "memory"))
      (realloc (core func $main "cabi_realloc"))))
  (func (export "on-tick") (param "now" u64) (result (list $finding))
    (canon lift (core func $main "on-tick") (memory (core memory $main "memory"))
      (realloc (core func $main "cabi_realloc")))))
