"""Reading prompt files: keys, chat template, length filter, and errors that name the file and line."""

from __future__ import annotations

import pytest
from miles_core.data.prompt_dataset import PromptDataError, prompt_dataset_from_args, read_prompt_dataset


def test_rows_become_records_with_label_and_metadata(write_jsonl):
    path = write_jsonl([
        {"prompt": "1+1=", "label": "2", "metadata": {"rm_type": "f1"}},
        {"prompt": "2+2=", "label": "4", "metadata": '{"difficulty": 3}'},
    ])
    dataset = read_prompt_dataset(path, input_key="prompt", label_key="label", metadata_key="metadata")
    assert [r.prompt for r in dataset.records] == ["1+1=", "2+2="]
    assert [r.label for r in dataset.records] == ["2", "4"]
    assert dataset.records[0].metadata == {"rm_type": "f1"}
    assert dataset.records[1].metadata == {"difficulty": 3}  # a JSON string is parsed
    assert [r.line_number for r in dataset.records] == [1, 2]


def test_malformed_line_names_file_and_line(write_jsonl):
    path = write_jsonl('{"prompt": "a"}\n\n{"prompt": "b",,}\n')
    with pytest.raises(PromptDataError, match=r"prompts\.jsonl:3: not valid JSON"):
        read_prompt_dataset(path, input_key="prompt")


def test_missing_input_key_names_the_key_and_the_keys_present(write_jsonl):
    path = write_jsonl([{"prompt": "a"}, {"question": "b", "answer": "c"}])
    with pytest.raises(PromptDataError, match=r":2: no key 'prompt' \(--input-key\); the keys on this line are \['answer', 'question'\]"):
        read_prompt_dataset(path, input_key="prompt")


def test_label_missing_on_some_rows_is_an_error_but_absent_everywhere_is_none(write_jsonl):
    partial = write_jsonl([{"prompt": "a", "label": 1}, {"prompt": "b"}], name="partial.jsonl")
    with pytest.raises(PromptDataError, match=r"partial\.jsonl:2: no key 'label' \(--label-key\)"):
        read_prompt_dataset(partial, input_key="prompt", label_key="label")
    unlabelled = write_jsonl([{"prompt": "a"}, {"prompt": "b"}], name="unlabelled.jsonl")
    dataset = read_prompt_dataset(unlabelled, input_key="prompt", label_key="label")
    assert [r.label for r in dataset.records] == [None, None]


def test_empty_and_missing_files_are_errors(write_jsonl, tmp_path):
    with pytest.raises(PromptDataError, match="is empty"):
        read_prompt_dataset(write_jsonl("\n \n"), input_key="prompt")
    with pytest.raises(PromptDataError, match="does not exist"):
        read_prompt_dataset(str(tmp_path / "nope.jsonl"), input_key="prompt")


def test_metadata_that_is_not_an_object_is_an_error(write_jsonl):
    path = write_jsonl([{"prompt": "a", "metadata": [1, 2]}])
    with pytest.raises(PromptDataError, match=r":1: 'metadata' \(--metadata-key\) must be a JSON object"):
        read_prompt_dataset(path, input_key="prompt", metadata_key="metadata")


def test_row_slice(write_jsonl):
    path = write_jsonl([{"prompt": str(i)} for i in range(6)])
    dataset = read_prompt_dataset(path + "@[1:4]", input_key="prompt")
    assert [r.prompt for r in dataset.records] == ["1", "2", "3"]


def test_chat_template_tools_and_length_filter(miles_args, write_jsonl, tiny_qwen3):
    tools = [{"type": "function", "function": {"name": "calc"}}]
    path = write_jsonl([
        {"prompt": "hi", "label": "x", "tools": tools},
        {"prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "yo"}], "label": "y"},
        {"prompt": "a much longer prompt that will not fit", "label": "z"},
    ])
    args = miles_args(prompt_data=path, apply_chat_template=True, hf_checkpoint=str(tiny_qwen3),
                     rollout_max_prompt_len=45)
    dataset = prompt_dataset_from_args(args)
    assert [r.prompt for r in dataset.records] == [
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nyo<|im_end|>\n<|im_start|>assistant\n",
    ]
    assert dataset.records[0].metadata["tools"] == tools
    assert dataset.dropped == {"prompt_too_long": 1}


def test_every_prompt_too_long_is_an_error(miles_args, write_jsonl, tiny_qwen3):
    args = miles_args(prompt_data=write_jsonl([{"prompt": "abcdef"}]), hf_checkpoint=str(tiny_qwen3),
                     rollout_max_prompt_len=3)
    with pytest.raises(PromptDataError, match=r"no usable prompt is left out of 1 rows .*prompt_too_long"):
        prompt_dataset_from_args(args)
