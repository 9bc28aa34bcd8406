//! MQTT: the contract with the central system. The only module that knows MQTT and the JSON
//! shapes of the payloads.
