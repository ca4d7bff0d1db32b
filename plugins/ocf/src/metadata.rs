//! An OCF agent's meta-data (the XML `<agent> meta-data` prints): its parameters (name, required,
//! content type) and its actions' default timeouts, and the checks of a resource's parameters
//! against them. Not running the agent (runner.rs).

use std::collections::BTreeMap;
use std::time::Duration;

/// One `<parameter>` of the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentParam {
    pub name: String,
    pub required: bool,
    /// The `<content type=…>`: string, integer, boolean, …
    pub content: String,
}

/// What the meta-data says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    pub params: Vec<AgentParam>,
    /// Action name -> its default timeout (for monitor, the depth-0 entry when there are several).
    pub timeouts: BTreeMap<String, Duration>,
}

impl Metadata {
    /// Parses the XML; `label` (e.g. `ocf heartbeat:Dummy`) names the agent in errors.
    pub fn parse(label: &str, xml: &str) -> Result<Metadata, String> {
        // Agents' meta-data names its DTD (ra-api-1.dtd); roxmltree only needs leave to see it.
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(xml, options)
            .map_err(|e| format!("{label}: meta-data is not valid XML: {e}"))?;
        let root = doc.root_element();
        if root.tag_name().name() != "resource-agent" {
            return Err(format!(
                "{label}: meta-data's root element is <{}>, not <resource-agent>",
                root.tag_name().name()
            ));
        }
        let mut meta = Metadata::default();
        for node in root.descendants().filter(|n| n.is_element()) {
            match node.tag_name().name() {
                "parameter" => meta.params.push(parse_param(label, node)?),
                "action" => add_action(&mut meta.timeouts, node),
                _ => {}
            }
        }
        Ok(meta)
    }

    /// Refuses an unknown parameter, a missing required one and a value not of its content type,
    /// naming the parameter and the agent.
    pub fn check(&self, label: &str, given: &BTreeMap<String, String>) -> Result<(), String> {
        for (name, value) in given {
            let Some(param) = self.params.iter().find(|p| &p.name == name) else {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "{label}: unknown parameter '{name}' (known: {})",
                    known.join(", ")
                ));
            };
            check_content(label, param, value)?;
        }
        match self
            .params
            .iter()
            .find(|p| p.required && !given.contains_key(&p.name))
        {
            Some(p) => Err(format!("{label}: missing required parameter '{}'", p.name)),
            None => Ok(()),
        }
    }
}

fn parse_param(label: &str, node: roxmltree::Node) -> Result<AgentParam, String> {
    let name = node
        .attribute("name")
        .ok_or_else(|| format!("{label}: meta-data has a <parameter> without a name"))?;
    let required = matches!(node.attribute("required"), Some("1" | "true" | "yes"));
    let content = node
        .children()
        .find(|c| c.has_tag_name("content"))
        .and_then(|c| c.attribute("type"))
        .unwrap_or("string");
    Ok(AgentParam {
        name: name.to_string(),
        required,
        content: content.to_string(),
    })
}

/// Keeps an action's timeout (`20s`, `20`, `1m`, `500ms`); a monitor with a depth other than 0
/// does not replace the depth-0 one.
fn add_action(timeouts: &mut BTreeMap<String, Duration>, node: roxmltree::Node) {
    let (Some(name), Some(timeout)) = (node.attribute("name"), node.attribute("timeout")) else {
        return;
    };
    let Some(timeout) = parse_duration(timeout) else {
        return;
    };
    let depth0 = node.attribute("depth").is_none_or(|d| d.trim() == "0");
    if depth0 || !timeouts.contains_key(name) {
        timeouts.insert(name.to_string(), timeout);
    }
}

/// An OCF/Pacemaker interval: a number with an optional unit (ms, s, m, h; none is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let ms = match unit.trim() {
        "" | "s" | "sec" => n.checked_mul(1000)?,
        "ms" | "msec" => n,
        "m" | "min" => n.checked_mul(60_000)?,
        "h" | "hr" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

fn check_content(label: &str, param: &AgentParam, value: &str) -> Result<(), String> {
    let ok = match param.content.as_str() {
        "integer" => {
            let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        "boolean" => matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0" | "y" | "n"
        ),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{label}: parameter '{}'={value:?}: expected {} {}",
            param.name,
            if param.content == "integer" {
                "an"
            } else {
                "a"
            },
            param.content
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="T" version="1.0">
<parameters>
<parameter name="ip" unique="1" required="1"><content type="string"/></parameter>
<parameter name="cidr_netmask"><content type="integer" default=""/></parameter>
<parameter name="flush"><content type="boolean" default="false"/></parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="monitor" depth="10" timeout="40s" interval="10s"/>
<action name="monitor" depth="0" timeout="20" interval="10s"/>
<action name="stop" timeout="2m"/>
</actions>
</resource-agent>"#;

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_and_timeouts_are_read() {
        let m = Metadata::parse("ocf t:T", XML).unwrap();
        assert_eq!(m.params.len(), 3);
        assert!(m.params[0].required && !m.params[1].required);
        assert_eq!(m.params[1].content, "integer");
        assert_eq!(m.timeouts["start"], Duration::from_secs(20));
        assert_eq!(m.timeouts["monitor"], Duration::from_secs(20));
        assert_eq!(m.timeouts["stop"], Duration::from_secs(120));
    }

    #[test]
    fn bad_parameters_are_refused_by_name() {
        let m = Metadata::parse("ocf t:T", XML).unwrap();
        assert_eq!(
            m.check("ocf t:T", &given(&[])).unwrap_err(),
            "ocf t:T: missing required parameter 'ip'"
        );
        let unknown = m.check("ocf t:T", &given(&[("ip", "x"), ("colour", "red")]));
        assert_eq!(
            unknown.unwrap_err(),
            "ocf t:T: unknown parameter 'colour' (known: ip, cidr_netmask, flush)"
        );
        let bad_int = m.check("ocf t:T", &given(&[("ip", "x"), ("cidr_netmask", "2x")]));
        assert_eq!(
            bad_int.unwrap_err(),
            "ocf t:T: parameter 'cidr_netmask'=\"2x\": expected an integer"
        );
        let bad_bool = m.check("ocf t:T", &given(&[("ip", "x"), ("flush", "maybe")]));
        assert!(bad_bool.unwrap_err().contains("'flush'"));
        let fine = given(&[("ip", "x"), ("cidr_netmask", "24"), ("flush", "Yes")]);
        assert!(m.check("ocf t:T", &fine).is_ok());
    }

    #[test]
    fn broken_xml_and_durations() {
        assert!(Metadata::parse("ocf t:T", "<x")
            .unwrap_err()
            .contains("ocf t:T"));
        assert!(Metadata::parse("ocf t:T", "<a/>")
            .unwrap_err()
            .contains("<a>"));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("fast"), None);
    }
}
