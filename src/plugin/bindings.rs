//! Host-side bindings for the `sluice:plugin` world (wit/plugin.wit).

wasmtime::component::bindgen!({
    path: "wit",
    world: "plugin",
    imports: {
        "sluice:plugin/dns": async,
        "sluice:plugin/kv": async | trappable,
        "sluice:plugin/message": trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "sluice:plugin/message.message": crate::plugin::message::MessageView,
    },
});
