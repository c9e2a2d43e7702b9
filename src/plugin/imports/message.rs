//! `sluice:plugin/message`: the message resource at DATA.

use wasmtime::component::Resource;

use crate::plugin::bindings::sluice::plugin::message::{Header, Host, HostMessage, Part};
use crate::plugin::message::MessageView;
use crate::plugin::state::PluginState;

impl Host for PluginState {}

impl PluginState {
    fn view(&self, message: &Resource<MessageView>) -> wasmtime::Result<&MessageView> {
        Ok(self.table.get(message)?)
    }
}

impl HostMessage for PluginState {
    fn size(&mut self, message: Resource<MessageView>) -> wasmtime::Result<u64> {
        Ok(self.view(&message)?.shared.size())
    }

    fn headers(&mut self, message: Resource<MessageView>) -> wasmtime::Result<Vec<Header>> {
        let view = self.view(&message)?;
        Ok(view.shared.headers().iter().map(|h| Header { name: h.name.clone(), value: h.value.clone() }).collect())
    }

    fn header(&mut self, message: Resource<MessageView>, name: String) -> wasmtime::Result<Vec<String>> {
        let view = self.view(&message)?;
        Ok(view
            .shared
            .headers()
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(&name))
            .map(|h| h.value.clone())
            .collect())
    }

    fn body_size(&mut self, message: Resource<MessageView>) -> wasmtime::Result<u64> {
        Ok(self.view(&message)?.shared.body_size())
    }

    fn read_body(&mut self, message: Resource<MessageView>, offset: u64, max: u32) -> wasmtime::Result<Vec<u8>> {
        Ok(self.view(&message)?.shared.read_body(offset, max)?)
    }

    fn parts(&mut self, message: Resource<MessageView>) -> wasmtime::Result<Vec<Part>> {
        let view = self.view(&message)?;
        Ok(view
            .shared
            .parts()?
            .iter()
            .enumerate()
            .map(|(index, p)| Part {
                index: index as u32,
                content_type: p.content_type.clone(),
                filename: p.filename.clone(),
                size: p.size,
                depth: p.depth,
                is_attachment: p.is_attachment,
            })
            .collect())
    }

    fn read_part(
        &mut self,
        message: Resource<MessageView>,
        index: u32,
        offset: u64,
        max: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        Ok(self.view(&message)?.shared.read_part(index, offset, max)?.unwrap_or_default())
    }

    fn drop(&mut self, message: Resource<MessageView>) -> wasmtime::Result<()> {
        self.table.delete(message)?;
        Ok(())
    }
}
